"""The identity cache: a command reads each person once; changes made here show at once;
another process's changes show once the cached row is older than `ROW_SECONDS`."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlmodel import col

from bot.actors import Actor
from bot.core import Core
from bot.models import NAME_LENGTH, Community, Identity, Platform
from bot.services import identities as module


def person(name: str, display: str = "") -> Actor:
    return Actor(Platform.SHELL, "cache", name, display or name.title())


def count_reads(core: Core) -> list[str]:
    seen: list[str] = []

    def on_statement(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM identities" in statement:
            seen.append(statement)

    sa.event.listen(core.db.engine.sync_engine, "before_cursor_execute", on_statement)
    return seen


async def test_a_person_is_read_once_while_fresh(core: Core) -> None:
    first = await core.identities.ensure(person("ann"))
    reads = count_reads(core)
    assert first.id is not None
    again = await core.identities.ensure(person("ann"))
    by_id = await core.identities.get(first.id)
    by_key = await core.identities.by_key(first.key)
    assert reads == []
    assert again.id == by_id.id == first.id and by_key is not None and by_key.id == first.id
    by_id.tz = "Europe/Berlin"  # a caller's copy is its own
    assert (await core.identities.get(first.id)).tz == "UTC"


async def test_changes_made_here_show_at_once(core: Core) -> None:
    await core.identities.ensure(person("bo", "Bo"))
    await core.identities.set_timezone(person("bo"), "europe/berlin")
    assert (await core.identities.ensure(person("bo"))).tz == "Europe/Berlin"
    renamed = await core.identities.ensure(person("bo", "Bo B."))
    assert renamed.display_name == "Bo B."
    async with core.db.session() as session:
        stored = await session.get(Identity, renamed.id)
    assert stored is not None and (stored.display_name, stored.tz) == ("Bo B.", "Europe/Berlin")


async def test_another_processs_change_shows_when_the_row_is_stale(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await core.identities.ensure(person("cy"))
    async with core.db.write_conn() as conn:  # as another process would
        await conn.execute(
            sa.update(Identity).where(col(Identity.id) == ann.id).values(tz="Asia/Tokyo")
        )
    assert (await core.identities.ensure(person("cy"))).tz == "UTC"  # still fresh here
    later = time.monotonic() + module.ROW_SECONDS + 1
    monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=lambda: later))
    assert (await core.identities.ensure(person("cy"))).tz == "Asia/Tokyo"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_core(request: pytest.FixtureRequest) -> Core:
    core: Core = request.getfixturevalue("core" if request.param == "sqlite" else "pg_core")
    return core


async def test_names_longer_than_their_columns_are_cut_not_failed(any_core: Core) -> None:
    """Matrix sets no limit on a display name or a room's name: one past the column failed
    in PostgreSQL ('value too long'), so the person's every command did."""
    long = Actor(
        Platform.MATRIX, "!room:example.org", "@ann:example.org", "Ann " + "é" * 400,
        community_name="Room \x00" + "r" * 400,
    )  # fmt: skip
    assert len(long.display_name) == NAME_LENGTH and "\x00" not in long.community_name
    identity = await any_core.identities.ensure(long)
    assert identity.display_name == ("Ann " + "é" * 400)[:NAME_LENGTH]
    stored = await any_core.identities.get(identity.id or 0)
    assert stored.display_name == identity.display_name
    async with any_core.db.session() as session:
        community = await session.get(Community, long.community_id)
    assert community is not None and community.name == ("Room " + "r" * 400)[:NAME_LENGTH]
