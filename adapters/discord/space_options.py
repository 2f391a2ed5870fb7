"""The Space's options that `/space create` and `/space edit` share, defined once.

discord.py reads a slash command's options from its callback's signature, so the shared
ones cannot be a parameter of their own: `space_options` puts them in the signature in
place of the callback's `fields: SpaceFields` parameter, and hands the callback what the
member gave as one `SpaceFields`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast, get_type_hints

from discord.app_commands import Range

from adapters.discord.interactions import Interactions
from bot.actors import Actor
from bot.commands.times import parse_duration, parse_when
from bot.money import currency as lookup_currency
from bot.services.spaces import SpaceChanges


@dataclass(frozen=True, slots=True)
class SpaceFields:
    """The shared options as the member gave them (None: left out)."""

    title: str | None = None
    starts: str | None = None
    tickets: int | None = None
    price: str | None = None
    currency: str | None = None
    duration: str | None = None
    limit: int | None = None
    description: str | None = None


# Each shared option's type and range, also for a command that lists them one by one
# among its own (`/slot add`). The title's range is a placeholder: each command's own
# copy of the option is changed (`offer_title_limit`), never these.
Title = Range[str, 1, 200]
Starts = Range[str, 1, 100]
Tickets = Range[int, 1, 1_000_000]
Price = Range[str, 1, 16]
Duration = Range[str, 1, 16]
Limit = Range[int, 1, 100]
Description = Range[str, 1, 2000]


def _annotations() -> dict[str, Any]:
    return {
        "title": Title,
        "starts": Starts,
        "tickets": Tickets,
        "price": Price,
        "currency": str,
        "duration": Duration,
        "limit": Limit,
        "description": Description,
    }


Callback = TypeVar("Callback", bound=Callable[..., Coroutine[Any, Any, None]])


def space_options(*required: str) -> Callable[[Callback], Callback]:
    """Put the shared options where the callback has `fields: SpaceFields`; `required`
    names those the member must give (the others may be left out)."""

    def decorate(func: Callback) -> Callback:
        hints = get_type_hints(func)
        shared = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=kind if name in required else kind | None,
                default=inspect.Parameter.empty if name in required else None,
            )
            for name, kind in _annotations().items()
        ]
        params: list[inspect.Parameter] = []
        for param in inspect.signature(func).parameters.values():
            if param.name == "fields":
                params += shared
            else:
                kind = hints.get(param.name, param.annotation)
                params.append(param.replace(annotation=kind, kind=param.KEYWORD_ONLY))
        params[:2] = [p.replace(kind=p.POSITIONAL_OR_KEYWORD) for p in params[:2]]

        @functools.wraps(func)
        async def callback(self: Any, interaction: Any, **given: Any) -> None:
            shared_given = {f.name: given.pop(f.name, None) for f in fields(SpaceFields)}
            await func(self, interaction, fields=SpaceFields(**shared_given), **given)

        callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # read by discord.py through inspect.signature
        return cast(Callback, callback)

    return decorate


async def space_changes(
    interactions: Interactions, actor: Actor, given: SpaceFields
) -> SpaceChanges:
    """Options -> typed values, reading `starts` in the member's zone, as the grammar does.
    The price stays as typed: an edit reads it in the Space's own currency (the core's
    rule), a create in `currency` or the default."""
    tz = await interactions.dispatcher.tz_of(actor)
    return SpaceChanges(
        title=given.title,
        starts_at=parse_when(given.starts, tz, interactions.core.clock.now())
        if given.starts is not None
        else None,
        capacity=given.tickets,
        price=given.price,
        currency=lookup_currency(given.currency).code if given.currency else None,
        duration_minutes=parse_duration(given.duration) if given.duration is not None else None,
        description=given.description,
        per_buyer_limit=given.limit,
    )
