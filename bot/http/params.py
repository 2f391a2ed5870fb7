"""Path parameters every route shares, bounded in their type so OpenAPI shows the bounds
and an id no database row can have (0, negative, past an INTEGER column: `MAX_ID`) is a
422, never a 500;
and whole numbers typed into the web pages' forms.

    async def get_space(space_id: SpaceId) -> ...
    whole_number(form.get("quantity", ""), digits=3)  -> 2, or None
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from bot.models import MAX_ID

SpaceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The Space's number.")]
#: A recording part's number within its Space (1, 2, ...).
PartNumber = Annotated[int, Path(ge=1, le=MAX_ID, description="The recording part's number.")]


def whole_number(raw: str, *, digits: int) -> int | None:
    """A form field as a whole number of at most `digits` digits, or None. Decimal digits
    only (any script's, as `int` reads them): `"²".isdigit()` is true, but `int("²")`
    fails."""
    return int(raw) if raw.isdecimal() and len(raw) <= digits else None
