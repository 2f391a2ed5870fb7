"""The ticket-holder role of each Space: created at the first sale (or at the start, for
the host and co-hosts), not at announcement, since a server holds at most 250 roles;
granted with each ticket (and to the host and co-hosts), removed on refund or revocation,
deleted when the Space ends or is cancelled. While its Space is live it is what opens the
Stage channel (`stage_access`).

When Discord refuses (no Manage Roles, or the bot's role below the one it manages — the
most common complaint about paid-role bots), the change is stored in
`discord_role_tasks`, the host and the moderators are told exactly what to change, and the
change is retried every DISCORD_RETRY_SECONDS and whenever roles change. Nothing is lost.

Callers hold the Space's lock (`KeyedLocks`) around every method taking a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
import structlog

from adapters.discord.models import DiscordSpace
from adapters.discord.store import (
    CREATE_ROLE,
    DELETE_ROLE,
    EVERYONE,
    GRANT,
    REMOVE,
)
from bot.models import Platform, Space

if TYPE_CHECKING:
    from adapters.discord.alerts import Alerts
    from adapters.discord.config import DiscordConfig
    from adapters.discord.stage_access import StageAccess
    from adapters.discord.store import DiscordStore
    from bot.core import Core

log = structlog.get_logger(__name__)

MISSING_MANAGE_ROLES = "manage_roles"
HIERARCHY = "hierarchy"
FORBIDDEN = "forbidden"
UNAVAILABLE = "unavailable"  # the server is not reachable right now: retry, tell no one


class RoleRefused(Exception):
    """Discord refused (or could not take) a role change; `kind` says why."""

    def __init__(self, kind: str, detail: str = "", *, role: str = "", top: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        self.role = role
        self.top = top


def role_name(space: Space) -> str:
    return f"🎟 #{space.id} {space.title}"[:100]


@dataclass(eq=False, repr=False)
class TicketRoles:
    core: Core
    config: DiscordConfig
    store: DiscordStore
    #: tells the host and moderators what Discord refused
    alerts: Alerts
    #: lets a role made while its Space is live onto the Stage
    access: StageAccess

    # --- what the events ask for ---------------------------------------------------------

    async def prepare(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
        """Create the Space's role unless it exists (it goes to the host and co-hosts at
        once): at the start, when no sale has made it yet."""
        assert space.id is not None
        if row.role_id is None and not await self.store.tasks(row):
            await self._change(guild, space, row, EVERYONE, CREATE_ROLE)

    async def grant(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, user_id: str
    ) -> None:
        await self._change(guild, space, row, user_id, GRANT)

    async def revoke(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, user_id: str
    ) -> None:
        """Take the role back, unless the member still has a reason to hold it."""
        if space.status.is_final or await self._still_entitled(space, guild.id, user_id):
            return
        await self._change(guild, space, row, user_id, REMOVE)

    async def delete(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
        """The Space is over: delete its role, which removes it from everyone at once."""
        assert space.id is not None
        await self.store.drop_member_tasks(row)
        if row.role_id is None:
            await self.store.drop_task(row, EVERYONE)
            return
        await self._change(guild, space, row, EVERYONE, DELETE_ROLE)

    async def retry(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> bool:
        """Try the Space's pending changes again. False when Discord still refuses, so the
        caller can leave the server's other Spaces for the next round."""
        assert space.id is not None
        for task in await self.store.tasks(row):
            try:
                await self._apply(guild, space, row, task.user_id, task.action)
            except RoleRefused as refused:
                await self.store.put_task(row, task.user_id, task.action, str(refused))
                await self._report(guild, space, row, refused)
                return False
            await self.store.drop_task(row, task.user_id)
        if row.role_alert is not None:
            row.role_alert = None
            await self.store.save(row)
            host = await self.core.identities.get(space.host_id)
            await self.alerts.tell_staff(
                guild,
                _int(host.user_id),
                f"Fixed: every ticket holder of “{space.title}” (#{space.id}) now has the "
                "right role. Thanks!",
            )
        return True

    # --- doing it ------------------------------------------------------------------------

    async def _change(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, user_id: str, action: str
    ) -> None:
        assert space.id is not None
        if await self.store.tasks(row):
            # earlier changes are waiting: queue behind them so the order holds
            await self.store.put_task(row, user_id, action, "waiting for earlier changes")
            await self.retry(guild, space, row)
            return
        try:
            await self._apply(guild, space, row, user_id, action)
        except RoleRefused as refused:
            await self.store.put_task(row, user_id, action, str(refused))
            await self._report(guild, space, row, refused)

    async def _apply(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, user_id: str, action: str
    ) -> None:
        if action == DELETE_ROLE:
            await self._delete_role(guild, row)
            return
        role = await self._ensure_role(guild, space, row)
        if action != CREATE_ROLE:
            await self._member_change(guild, space, row, role, user_id, grant=action == GRANT)

    async def _member_change(
        self,
        guild: discord.Guild,
        space: Space,
        row: DiscordSpace,
        role: discord.Role,
        user_id: str,
        *,
        grant: bool,
    ) -> None:
        member = await self._member(guild, user_id)
        if member is None:
            return  # left the server: nothing to grant or remove
        try:
            if grant:
                await member.add_roles(role, reason=f"Stagepass ticket for Space #{space.id}")
            else:
                await member.remove_roles(role, reason=f"Stagepass ticket closed, #{space.id}")
        except discord.Forbidden as exc:
            raise self._why(guild, role, exc) from None
        except discord.NotFound:
            row.role_id = None  # deleted by someone in Discord: made again next time
            await self.store.save(row)
            raise RoleRefused(UNAVAILABLE, "the role was deleted") from None
        except discord.HTTPException as exc:
            raise RoleRefused(UNAVAILABLE, f"{exc.status} {exc.text}") from None

    async def _give_staff(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, role: discord.Role
    ) -> None:
        """A new role goes to the host and co-hosts who are members here (they run the
        Stage); a refusal waits with the other pending changes."""
        assert space.id is not None
        staff = [space.host_id, *await self.core.spaces.cohost_ids(space.id)]
        for identity in (await self.core.identities.keys_for(staff)).values():
            if not identity.key.startswith(f"{Platform.DISCORD.value}:{guild.id}:"):
                continue  # a linked community's host: not a member of this server
            try:
                await self._member_change(guild, space, row, role, identity.user_id, grant=True)
            except RoleRefused as refused:
                await self.store.put_task(row, identity.user_id, GRANT, str(refused))

    async def _ensure_role(
        self, guild: discord.Guild, space: Space, row: DiscordSpace
    ) -> discord.Role:
        if row.role_id is not None:
            role = await self._find_role(guild, int(row.role_id))
            if role is not None:
                return role
        try:
            role = await guild.create_role(
                name=role_name(space),
                permissions=discord.Permissions.none(),
                mentionable=False,
                reason=f"Stagepass ticket holders of Space #{space.id}",
            )
        except discord.Forbidden as exc:
            raise self._why(guild, None, exc) from None
        except discord.HTTPException as exc:
            raise RoleRefused(UNAVAILABLE, f"{exc.status} {exc.text}") from None
        row.role_id = str(role.id)
        await self.store.save(row)
        await self.access.allow_role(guild, space, row, role)
        await self._give_staff(guild, space, row, role)
        return role

    async def _delete_role(self, guild: discord.Guild, row: DiscordSpace) -> None:
        if row.role_id is None:
            return
        role = await self._find_role(guild, int(row.role_id))
        if role is not None:
            try:
                await role.delete(reason=f"Stagepass Space #{row.space_id} is over")
            except discord.NotFound:
                pass
            except discord.Forbidden as exc:
                raise self._why(guild, role, exc) from None
            except discord.HTTPException as exc:
                raise RoleRefused(UNAVAILABLE, f"{exc.status} {exc.text}") from None
        row.role_id = None
        await self.store.save(row)

    async def _find_role(self, guild: discord.Guild, role_id: int) -> discord.Role | None:
        role = guild.get_role(role_id)
        if role is not None:
            return role
        try:
            roles = await guild.fetch_roles()
        except discord.HTTPException as exc:
            raise RoleRefused(UNAVAILABLE, f"{exc.status} {exc.text}") from None
        return discord.utils.get(roles, id=role_id)

    async def _member(self, guild: discord.Guild, user_id: str) -> discord.Member | None:
        member = guild.get_member(int(user_id))
        if member is not None:
            return member
        try:
            return await guild.fetch_member(int(user_id))
        except discord.NotFound:
            return None
        except discord.HTTPException as exc:
            raise RoleRefused(UNAVAILABLE, f"{exc.status} {exc.text}") from None

    async def _still_entitled(self, space: Space, guild_id: int, user_id: str) -> bool:
        assert space.id is not None
        identity = await self.core.identities.by_key(f"discord:{guild_id}:{user_id}")
        if identity is None or identity.id is None:
            return False
        if identity.id == space.host_id or identity.id in await self.core.spaces.cohost_ids(
            space.id
        ):
            return True
        return bool(await self.core.tickets.tickets_of(identity.id, space.id))

    def _why(
        self, guild: discord.Guild, role: discord.Role | None, exc: discord.HTTPException
    ) -> RoleRefused:
        """Name the cause of a 403 from what the bot knows about its own roles."""
        me = guild.me
        if not me.guild_permissions.manage_roles:
            return RoleRefused(MISSING_MANAGE_ROLES, exc.text, top=me.top_role.name)
        if role is not None and role >= me.top_role:
            return RoleRefused(HIERARCHY, exc.text, role=role.name, top=me.top_role.name)
        return RoleRefused(FORBIDDEN, exc.text or str(exc.status))

    # --- telling people ------------------------------------------------------------------

    async def _report(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, refused: RoleRefused
    ) -> None:
        """Tell the host and the moderators once per Space and problem; log every time."""
        assert space.id is not None
        log.warning(
            "ticket role change refused", space_id=space.id, guild=guild.id, problem=str(refused)
        )
        if refused.kind == UNAVAILABLE or row.role_alert == refused.kind:
            return
        waiting = len(await self.store.tasks(row))
        host = await self.core.identities.get(space.host_id)
        await self.alerts.tell_staff(
            guild, _int(host.user_id), self.advice(guild, space, refused, waiting)
        )
        row.role_alert = refused.kind
        await self.store.save(row)

    def advice(self, guild: discord.Guild, space: Space, refused: RoleRefused, waiting: int) -> str:
        what = f"the ticket-holder role of “{space.title}” (#{space.id}) in **{guild.name}**"
        minutes = max(1, round(self.config.retry_seconds / 60))
        later = (
            f"Stagepass retries every {minutes} min and as soon as roles change; "
            f"nothing is lost ({waiting} change(s) waiting)."
        )
        bot_role = refused.top or "Stagepass"
        if refused.kind == MISSING_MANAGE_ROLES:
            return (
                f"Stagepass can't manage {what}: the bot is missing the **Manage Roles** "
                f"permission.\nTo fix: Server Settings → Roles → **{bot_role}** → turn on "
                f"**Manage Roles** (or re-invite the bot with its invite link).\n{later}"
            )
        if refused.kind == HIERARCHY:
            return (
                f"Stagepass can't manage {what}: the role **{refused.role}** is above the bot's "
                f"highest role **{bot_role}**, and Discord only lets a bot manage roles below "
                f"its own.\nTo fix: Server Settings → Roles → drag **{bot_role}** above "
                f"**{refused.role}**.\n{later}"
            )
        return (
            f"Stagepass can't manage {what}: Discord said “{refused.detail}”.\nTo fix: give "
            f"the bot's role **Manage Roles** and put it above the ticket roles.\n{later}"
        )


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None
