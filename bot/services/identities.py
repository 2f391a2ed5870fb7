"""Communities and identities: created on first sight, kept up to date, cached by key.

A chat command reads the person behind it several times (their zone, their rights, the
Space's host): identity rows are kept for `ROW_SECONDS` in a bounded cache, by key and by
id, so a command reads each person once. Changes made here (display name, time zone)
update the cache at once; another process's changes show within `ROW_SECONDS`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.actors import Actor, split_key
from bot.clock import Clock
from bot.db import Database
from bot.errors import InvalidInput, NotFound
from bot.models import Community, Identity

ROW_SECONDS = 5.0
ROWS_KEPT = 10_000


class _Rows:
    """Identity rows by key and by id, each for `ROW_SECONDS`, at most `ROWS_KEPT`."""

    def __init__(self) -> None:
        # plain field values: each reader gets a fresh `Identity` of its own to change
        self._by_key: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._key_of: dict[int, str] = {}

    def put(self, identity: Identity) -> None:
        assert identity.id is not None
        key = identity.key
        self._by_key[key] = (time.monotonic() + ROW_SECONDS, identity.model_dump())
        self._by_key.move_to_end(key)
        self._key_of[identity.id] = key
        while len(self._by_key) > ROWS_KEPT:
            _, (_, old) = self._by_key.popitem(last=False)
            self._key_of.pop(old["id"], None)

    def by_key(self, key: str) -> Identity | None:
        found = self._by_key.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return Identity.model_validate(found[1])

    def by_id(self, identity_id: int) -> Identity | None:
        key = self._key_of.get(identity_id)
        return self.by_key(key) if key is not None else None


class IdentityService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._ids: dict[str, int] = {}
        self._rows = _Rows()

    async def resolve_many(self, conn: AsyncConnection, actors: Sequence[Actor]) -> dict[str, int]:
        """Ids for many actors inside the caller's transaction, the new ones created in
        bulk (the claim batcher resolves a whole batch of buyers this way). Call `remember`
        with the result once that transaction has committed."""
        found = {a.key: self._ids[a.key] for a in actors if a.key in self._ids}
        # sorted: concurrent batches (other processes) take the unique-index locks in one
        # order, so they wait for each other instead of deadlocking
        missing = {a.key: a for a in sorted(actors, key=lambda a: a.key) if a.key not in found}
        if not missing:
            return found
        now = self.clock.now()
        insert = postgresql.insert if not self.db.is_sqlite else sqlite.insert
        communities = {a.community_id: a for a in missing.values()}  # sorted too
        await conn.execute(
            insert(Community).on_conflict_do_nothing(index_elements=["id"]),
            [
                {"id": a.community_id, "platform": a.platform.value, "external_id": a.community,
                 "name": a.community_name, "created_at": now}
                for a in communities.values()
            ],
        )  # fmt: skip
        await conn.execute(
            insert(Identity).on_conflict_do_nothing(index_elements=["community_id", "user_id"]),
            [
                {"platform": a.platform.value, "community_id": a.community_id,
                 "user_id": a.user_id, "display_name": a.display_name or a.user_id,
                 "tz": first_zone(a.tz), "created_at": now}
                for a in missing.values()
            ],
        )  # fmt: skip
        pairs = [(a.community_id, a.user_id) for a in missing.values()]
        rows = await conn.execute(
            sa.select(col(Identity.id), col(Identity.community_id), col(Identity.user_id)).where(
                sa.tuple_(col(Identity.community_id), col(Identity.user_id)).in_(pairs)
            )
        )
        for row in rows:
            found[f"{row.community_id}:{row.user_id}"] = row.id
        return found

    def remember(self, ids: dict[str, int]) -> None:
        """Cache ids that are now committed."""
        self._ids.update(ids)

    async def ensure(self, actor: Actor) -> Identity:
        """The identity row for `actor`, created (with its community) when new; a read
        only (or none: cached), when it exists and its display name is current."""
        cached = self._rows.by_key(actor.key)
        if cached is not None and (
            not actor.display_name or cached.display_name == actor.display_name
        ):
            return cached
        async with self.db.session() as session:
            found = (
                await session.exec(
                    select(Identity).where(
                        Identity.community_id == actor.community_id,
                        Identity.user_id == actor.user_id,
                    )
                )
            ).first()
        if (
            found is not None
            and found.id is not None
            and (not actor.display_name or found.display_name == actor.display_name)
        ):
            self._ids[actor.key] = found.id
            self._rows.put(found)
            return found
        now = self.clock.now()
        insert = postgresql.insert if not self.db.is_sqlite else sqlite.insert
        async with self.db.write() as session:
            conn = await session.connection()
            await conn.execute(
                insert(Community)
                .values(
                    id=actor.community_id,
                    platform=actor.platform.value,
                    external_id=actor.community,
                    name=actor.community_name,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            await conn.execute(
                insert(Identity)
                .values(
                    platform=actor.platform.value,
                    community_id=actor.community_id,
                    user_id=actor.user_id,
                    display_name=actor.display_name or actor.user_id,
                    tz=first_zone(actor.tz),
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["community_id", "user_id"])
            )
            identity = (
                await session.exec(
                    select(Identity).where(
                        Identity.community_id == actor.community_id,
                        Identity.user_id == actor.user_id,
                    )
                )
            ).one()
            if actor.display_name and identity.display_name != actor.display_name:
                identity.display_name = actor.display_name
                session.add(identity)
        assert identity.id is not None
        self._ids[actor.key] = identity.id
        self._rows.put(identity)
        return identity

    async def get(self, identity_id: int) -> Identity:
        cached = self._rows.by_id(identity_id)
        if cached is not None:
            return cached
        async with self.db.session() as session:
            identity = await session.get(Identity, identity_id)
        if identity is None:
            raise NotFound("No such person.")
        self._rows.put(identity)
        return identity

    async def by_key(self, key: str) -> Identity | None:
        cached = self._rows.by_key(key)
        if cached is not None:
            return cached
        community, user_id = split_key(key)
        async with self.db.session() as session:
            found = (
                await session.exec(
                    select(Identity).where(
                        Identity.community_id == community, Identity.user_id == user_id
                    )
                )
            ).first()
        if found is not None:
            self._rows.put(found)
        return found

    async def zone_of(self, key: str) -> ZoneInfo:
        """The zone the core writes this person's times in: theirs (`/tz set`), else UTC."""
        identity = await self.by_key(key)
        return ZoneInfo(identity.tz if identity is not None else "UTC")

    async def keys_for(self, ids: list[int]) -> dict[int, Identity]:
        if not ids:
            return {}
        async with self.db.session() as session:
            rows = await session.exec(select(Identity).where(col(Identity.id).in_(ids)))
            return {row.id: row for row in rows if row.id is not None}

    async def set_timezone(self, actor: Actor, zone: str) -> Identity:
        tz = parse_zone(zone)
        identity = await self.ensure(actor)
        async with self.db.write_conn() as conn:
            await conn.execute(
                sa.update(Identity).where(col(Identity.id) == identity.id).values(tz=tz.key)
            )
        identity.tz = tz.key
        self._rows.put(identity)
        return identity


_ZONES_LOWER: dict[str, str] = {}


def first_zone(name: str | None) -> str:
    """A new identity's zone: what the platform says (Slack's users.info `tz`) when it
    names a zone we know, else UTC. Later `/tz set` changes it; the platform never does."""
    if not name:
        return "UTC"
    try:
        return ZoneInfo(name).key
    except (ValueError, ZoneInfoNotFoundError):
        return "UTC"


def parse_zone(name: str) -> ZoneInfo:
    """An IANA zone from what a person typed (`europe/berlin` works; `CET` too)."""
    if not _ZONES_LOWER:
        _ZONES_LOWER.update({z.lower(): z for z in available_timezones()})
    key = _ZONES_LOWER.get(name.strip().lower().replace(" ", "_"))
    try:
        if key is None:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"Unknown time zone {name!r}. Use a name like Europe/Berlin or America/New_York.",
            field="tz",
        ) from None
