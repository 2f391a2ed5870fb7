"""Workspaces that installed the app, and OAuth states, in the Stagepass database.

`InstallationStore` is the slack-sdk store Bolt's OAuth flow saves into and its
authorization reads from (bot tokens only: Stagepass asks for no user scopes). Bolt
looks the workspace up before any listener runs, so before Slack gets its answer:
lookups are cached for a minute, and when the cache is due but the database is slow
the last known answer is used after `stale_after` seconds while the read finishes. An
uninstall clears the cache at once in this process (others follow within a minute).
Tokens are encrypted in the database (the core's `Cipher`) and decrypted as rows are
read; the logs learn each one, so they mask it.

`StateStore` issues OAuth `state` values that are signed with SLACK_STATE_SECRET (a
forged one is refused without touching the database) and stored, so each is used once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlmodel import col, select

from adapters.slack.models import SlackInstallation, SlackOAuthState
from bot.clock import Clock
from bot.db import Database
from bot.encryption import Cipher
from bot.logs import add_secrets
from bot.models import platform_name

_log = logging.getLogger(__name__)  # the logger slack-sdk asks stores for
log = structlog.get_logger(__name__)

Key = tuple[str, str]  # (enterprise_id or "", team_id or "")


def _key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool) -> Key:
    # an org-wide install is one row for the whole org, whatever team asks
    return (enterprise_id or "", "" if is_enterprise_install else (team_id or ""))


def _is(key: Key) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    """The row of `key` (a WHERE clause's terms)."""
    return (
        col(SlackInstallation.enterprise_id) == key[0],
        col(SlackInstallation.team_id) == key[1],
    )


def _when(value: float | int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class InstallationStore(AsyncInstallationStore):
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        cache_seconds: float = 60.0,
        stale_after: float = 1.0,
        cipher: Cipher,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.clock = clock
        self.cipher = cipher
        self.cache_seconds = cache_seconds
        self.stale_after = stale_after
        self._monotonic = monotonic
        self._cache: dict[Key, tuple[float, SlackInstallation | None]] = {}
        self._lookups: dict[Key, asyncio.Task[SlackInstallation | None]] = {}

    async def close(self) -> None:
        """Cancel the lookups still running (shutdown)."""
        pending = list(self._lookups.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def logger(self) -> logging.Logger:
        return _log

    # --- writing ---------------------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        if not installation.bot_token:
            return  # a user-token-only install: nothing Stagepass can use
        await self._upsert(
            installation.to_bot(),
            installer=installation.user_id,
            channel=installation.incoming_webhook_channel_id,
        )

    async def async_save_bot(self, bot: Bot) -> None:
        await self._upsert(bot, installer=None, channel=None)

    async def _upsert(self, bot: Bot, *, installer: str | None, channel: str | None) -> None:
        key = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        add_secrets(bot.bot_token, bot.bot_refresh_token)
        values: dict[str, Any] = {
            "app_id": bot.app_id or "",
            # names Slack gives, not typed as a command: cleaned as the core cleans people's
            "enterprise_name": platform_name(bot.enterprise_name or ""),
            "team_name": platform_name(bot.team_name or ""),
            "is_enterprise_install": bool(bot.is_enterprise_install),
            "bot_token": self.cipher.encrypt(bot.bot_token),
            "bot_refresh_token": self.cipher.encrypt_optional(bot.bot_refresh_token),
            "bot_token_expires_at": _when(bot.bot_token_expires_at),
            "bot_id": bot.bot_id,
            "bot_user_id": bot.bot_user_id,
            "bot_scopes": ",".join(bot.bot_scopes or ()),
            "installed_at": self.clock.now(),
        }
        if installer:
            values["installer_user_id"] = installer
        if channel:
            values["announce_channel_id"] = channel
        async with self.db.write() as session:
            row = (await session.exec(select(SlackInstallation).where(*_is(key)))).first()
            if row is None:
                row = SlackInstallation(enterprise_id=key[0], team_id=key[1], **values)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            session.add(row)
        self._cache.pop(key, None)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # Stagepass keeps no user tokens; per-user deletes change nothing
            await self._delete(enterprise_id, team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def _delete(self, enterprise_id: str | None, team_id: str | None) -> None:
        keys = {_key(enterprise_id, team_id, False), _key(enterprise_id, team_id, True)}
        if not team_id:
            keys = {_key(enterprise_id, None, True)}
        async with self.db.write() as session:
            for key in keys:
                await session.exec(sa.delete(SlackInstallation).where(*_is(key)))
        for key in keys:
            self._cache.pop(key, None)

    # --- reading ---------------------------------------------------------------------------

    async def _find(self, key: Key) -> SlackInstallation | None:
        cached = self._cache.get(key)
        if cached is not None and self._monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        lookup = self._lookups.get(key)
        if lookup is None:  # one read per workspace at a time, however many ask
            lookup = asyncio.create_task(self._load(key), name=f"slack:installation:{key[1]}")
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda task: self._looked_up(key, task))
        if cached is None:
            return await asyncio.shield(lookup)
        try:
            return await asyncio.wait_for(asyncio.shield(lookup), self.stale_after)
        except TimeoutError:
            log.warning("slack: installation lookup is slow; using the cached one", team=key[1])
            return cached[1]

    def _looked_up(self, key: Key, task: asyncio.Task[SlackInstallation | None]) -> None:
        self._lookups.pop(key, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("slack: installation lookup failed", team=key[1], exc_info=error)

    async def _load(self, key: Key) -> SlackInstallation | None:
        async with self.db.session() as session:
            row = (await session.exec(select(SlackInstallation).where(*_is(key)))).first()
        row = self._opened(row)
        self._cache[key] = (self._monotonic(), row)
        return row

    def _opened(self, row: SlackInstallation | None) -> SlackInstallation | None:
        """`row` (detached: its session is closed) with its tokens decrypted; the logs
        learn them. Nothing writes such a row back: `_upsert` reads its own."""
        if row is None:
            return None
        row.bot_token = self.cipher.decrypt(row.bot_token)
        row.bot_refresh_token = self.cipher.decrypt_optional(row.bot_refresh_token)
        add_secrets(row.bot_token, row.bot_refresh_token)
        return row

    async def installation_for_team(self, team_id: str) -> SlackInstallation | None:
        """The installation that serves `team_id`: its own, else its org's (Grid)."""
        row = await self._find(("", team_id))
        if row is not None:
            return row
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(SlackInstallation).where(SlackInstallation.team_id == team_id)
                )
            ).first()
        return self._opened(row)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._find(_key(enterprise_id, team_id, bool(is_enterprise_install)))
        return None if row is None else _bot(row)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self._find(_key(enterprise_id, team_id, bool(is_enterprise_install)))
        if row is None or (user_id is not None and user_id != row.installer_user_id):
            return None
        return Installation(
            **_bot_fields(row),
            user_id=row.installer_user_id,
            incoming_webhook_channel_id=row.announce_channel_id,
        )


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _bot(row: SlackInstallation) -> Bot:
    return Bot(**_bot_fields(row))


def _bot_fields(row: SlackInstallation) -> dict[str, Any]:
    """What an `Installation` and a `Bot` both take from our row."""
    return dict(
        app_id=row.app_id or None,
        enterprise_id=row.enterprise_id or None,
        enterprise_name=row.enterprise_name or None,
        team_id=row.team_id or None,
        team_name=row.team_name or None,
        bot_token=row.bot_token,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        bot_refresh_token=row.bot_refresh_token,
        bot_token_expires_at=_epoch(row.bot_token_expires_at),
        is_enterprise_install=row.is_enterprise_install,
        installed_at=row.installed_at.timestamp(),
    )


class StateStore(AsyncOAuthStateStore):
    def __init__(
        self, db: Database, clock: Clock, *, secret: str, expiration_seconds: int = 600
    ) -> None:
        self.db = db
        self.clock = clock
        self._secret = secret.encode()
        self.expiration = timedelta(seconds=expiration_seconds)

    @property
    def logger(self) -> logging.Logger:
        return _log

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        nonce = secrets.token_urlsafe(24)
        now = self.clock.now()
        async with self.db.write() as session:
            await session.exec(
                sa.delete(SlackOAuthState).where(col(SlackOAuthState.expires_at) < now)
            )
            session.add(SlackOAuthState(nonce=nonce, expires_at=now + self.expiration))
        return f"{nonce}.{self._sign(nonce)}"

    async def async_consume(self, state: str) -> bool:
        nonce, _, signature = state.partition(".")
        if not nonce or not hmac.compare_digest(signature, self._sign(nonce)):
            return False
        async with self.db.write() as session:
            result = await session.exec(
                sa.delete(SlackOAuthState).where(
                    col(SlackOAuthState.nonce) == nonce,
                    col(SlackOAuthState.expires_at) > self.clock.now(),
                )
            )
            return bool(result.rowcount == 1)
