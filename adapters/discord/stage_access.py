"""Who may be on a Space's Stage: one live Space per Stage channel, and only its listeners.

- Starting a Space takes its channel's lock (`discord_stage_locks`) in the very
  transaction that makes it live (`claim`, a start check of the core), so a second Space
  cannot go live on a Stage that is in use: the host is told which Space holds it.
- While it is live (`lock`), @everyone may not Connect to the channel; the live Space's
  ticket role, the moderators' roles and the bot may. At the end (`unlock`) @everyone's
  Connect is put back as it was, and the role (with its overwrite) is deleted. So a ticket
  for another announced Space opens nothing, and the Stage is open between Spaces.
- A member who joins anyway (an administrator, a role allowed elsewhere, a stale client)
  is asked about by the core's rule (`StageService.admit`); one it refuses is
  disconnected and told why by DM, through the outbox. So is anyone already in the
  channel when the Space starts, and anyone whose ticket is refunded or revoked (or who
  stops being a co-host) while on it.

Nothing here applies when DISCORD_TICKET_ONLY_STAGE is off, except the lock: two Spaces
never share a Stage. Then the channel is as open as the server made it, so a paid Space's
room is not bridged into it while anyone without a ticket may connect (`open_to`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from adapters.discord.members import actor_for, guild_of, moderator_roles
from adapters.discord.models import DiscordSpace, DiscordStageLock
from adapters.discord.store import DiscordStore, KeyedLocks
from bot.errors import Conflict, PermissionDenied
from bot.models import Platform, Space, SpaceStatus

if TYPE_CHECKING:
    from adapters.discord.alerts import Alerts
    from adapters.discord.config import DiscordConfig
    from bot.core import Core

log = structlog.get_logger(__name__)

Venue = discord.StageChannel | discord.VoiceChannel

#: @everyone's Connect overwrite, as stored in `DiscordStageLock.everyone_before`
_CONNECT = {"allow": True, "deny": False, "unset": None}


def venue(
    config_channels: tuple[int, ...], guild: discord.Guild, row: DiscordSpace | None
) -> Venue | None:
    """Where a Space goes live in `guild`: the Stage its event was made for, else the first
    configured Stage channel, else a configured voice channel (bridged)."""
    ids = [int(row.stage_channel_id)] if row is not None and row.stage_channel_id else []
    channels = [guild.get_channel(i) for i in (*ids, *config_channels)]
    stages = [c for c in channels if isinstance(c, discord.StageChannel)]
    voices = [c for c in channels if isinstance(c, discord.VoiceChannel)]
    return (stages or voices or [None])[0]


@dataclass(eq=False, repr=False)
class StageAccess:
    core: Core
    client: discord.Client
    config: DiscordConfig
    store: DiscordStore
    #: tells the host and moderators what Discord refused
    alerts: Alerts
    #: one change of a channel's overwrites at a time
    _channels: KeyedLocks = field(default_factory=KeyedLocks, init=False)
    #: one admission of a member at a time, by (server, member)
    _members: KeyedLocks = field(default_factory=KeyedLocks, init=False)
    #: members disconnected whom Discord still shows in voice, by (server, member): the
    #: voice state (discord.py keeps one object per stay in voice) they were refused in
    _moved_out: dict[tuple[int, int], discord.VoiceState] = field(default_factory=dict, init=False)

    def venue(self, guild: discord.Guild, row: DiscordSpace | None) -> Venue | None:
        return venue(self.config.stage_channels, guild, row)

    # --- the lock: one Space per Stage ---------------------------------------------------

    async def claim(self, session: AsyncSession, space: Space) -> None:
        """The core's start check: take the Space's channel, or refuse the start."""
        if space.id is None:
            return
        run_from = await self.core.communities.stage_on(
            space.id, space.community_id, Platform.DISCORD
        )
        guild_id = guild_of(run_from) if run_from is not None else None
        guild = self.client.get_guild(guild_id) if guild_id is not None else None
        if guild is None or not self.config.serves(guild.id):
            return
        channel = self.venue(guild, await session.get(DiscordSpace, (space.id, str(guild.id))))
        if channel is None:
            return
        now = self.core.clock.now()
        # the row exists before it is locked, so two starts racing for a Stage queue on it
        # (PostgreSQL) instead of one failing on the primary key
        sqlite_db = self.core.db.is_sqlite
        insert = sqlite.insert if sqlite_db else postgresql.insert
        conn = await session.connection()
        await conn.execute(
            insert(DiscordStageLock)
            .values(
                channel_id=str(channel.id),
                guild_id=str(guild.id),
                space_id=space.id,
                everyone_before="",
                locked_at=now,
            )
            .on_conflict_do_nothing(index_elements=["channel_id"])
        )
        lock = await session.get(
            DiscordStageLock, str(channel.id), with_for_update=not sqlite_db, populate_existing=True
        )
        assert lock is not None
        if lock.space_id != space.id:
            other = await session.get(Space, lock.space_id)
            if other is not None and other.status == SpaceStatus.LIVE:
                raise Conflict(
                    f"“{other.title}” (Space #{other.id}) is live on {channel.mention} right "
                    f"now, and a Stage holds one Space at a time. Start Space #{space.id} "
                    f"when #{other.id} has ended (/space end {other.id})."
                )
            lock.space_id, lock.locked_at = space.id, now  # the last Space is over
        session.add(lock)

    # --- while it is live: ticket holders only -------------------------------------------

    async def lock(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
        """The Space went live: only its listeners may connect, and those already in the
        channel who may not listen are moved out."""
        channel = self.venue(guild, row)
        if channel is None or space.id is None or not self.config.ticket_only_stage:
            return
        async with self._channels.hold(channel.id):
            held = await self.store.stage_lock(channel.id)
            if held is None or held.space_id != space.id:
                return  # not (or no longer) this Space's Stage
            everyone = channel.overwrites_for(guild.default_role).connect
            if held.everyone_before == "":
                held.everyone_before = next(k for k, v in _CONNECT.items() if v is everyone)
                await self.store.save_lock(held)
            role = guild.get_role(int(row.role_id)) if row.role_id else None
            allowed = [guild.me, *moderator_roles(guild, self.config.moderator_roles), role]
            try:
                if everyone is not False:
                    await channel.set_permissions(
                        guild.default_role, connect=False, reason=_reason(space)
                    )
                for target in allowed:
                    await self._allow(channel, target, space)
            except discord.HTTPException as exc:
                await self._refused(guild, space, channel, exc)
                return
        for member in list(channel.members):
            await self.admit(member, channel, space)

    async def allow_role(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, role: discord.Role
    ) -> None:
        """A ticket role made while its Space is live (the first sale came late)."""
        channel = self.venue(guild, row)
        if channel is None or space.status != SpaceStatus.LIVE or not self.config.ticket_only_stage:
            return
        async with self._channels.hold(channel.id):
            held = await self.store.stage_lock(channel.id)
            if held is None or held.space_id != space.id:
                return
            try:
                await self._allow(channel, role, space)
            except discord.HTTPException as exc:
                await self._refused(guild, space, channel, exc)

    async def unlock(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
        """The Space is over: free its channel and put @everyone's Connect back."""
        channel = self.venue(guild, row)
        if channel is None or space.id is None:
            return
        async with self._channels.hold(channel.id):
            released = await self.store.release_stage(channel.id, space.id)
            if released is None or released.everyone_before not in _CONNECT:
                return  # someone else's now, or never locked
            overwrite = channel.overwrites_for(guild.default_role)
            overwrite.update(connect=_CONNECT[released.everyone_before])
            try:
                await channel.set_permissions(
                    guild.default_role,
                    overwrite=None if overwrite.is_empty() else overwrite,
                    reason=f"Stagepass Space #{space.id} is over",
                )
            except discord.HTTPException as exc:
                await self._refused(guild, space, channel, exc)

    def open_to(
        self, guild: discord.Guild, channel: Venue, space: Space, row: DiscordSpace
    ) -> list[discord.Role]:
        """Who may connect to `channel` without a ticket for `space`, when Stagepass does not
        keep it to ticket holders (DISCORD_TICKET_ONLY_STAGE off): @everyone and every other
        role whose members Discord lets in (View Channel and Connect, from the role's
        permissions and the channel's overwrites, as Discord resolves them). Not counted:
        the Space's ticket role, the moderators' roles and bot or integration roles. Empty
        when Stagepass keeps the channel, or the Space is free; only @everyone when it may
        connect."""
        if self.config.ticket_only_stage or space.is_free:
            return []
        staff = {role.id for role in moderator_roles(guild, self.config.moderator_roles)}
        if row.role_id:
            staff.add(int(row.role_id))
        open_to = [
            role
            for role in guild.roles
            if not role.managed and role.id not in staff and _connects(channel, role)
        ]
        # every role has @everyone's permissions: when it may connect, it says it all
        everyone = guild.default_role
        return [everyone] if everyone in open_to else open_to

    # --- who is in the channel -----------------------------------------------------------

    async def admit(self, member: discord.Member, channel: Venue, space: Space) -> bool:
        """Whether `member`, in `channel` where `space` is live, may stay (the core's rule);
        one who may not is disconnected and told why. False when disconnected.

        One refusal, one disconnection and one DM: when their join and the Stage's re-check
        ask at the same moment, the second waits for the first, then finds them moved out
        (Discord reports them gone, or not yet: `_moved_out`) and does nothing."""
        if member.bot or not self.config.ticket_only_stage:
            return True
        key = (member.guild.id, member.id)
        async with self._members.hold(key):
            voice = member.voice
            if voice is None or voice.channel is None or voice.channel.id != channel.id:
                return False  # not (or no longer) there
            if self._moved_out.get(key) is voice:
                return False
            actor = actor_for(member, self.config.moderator_roles)
            try:
                await self.core.stage.admit(actor, space)
            except PermissionDenied as refused:
                try:
                    await member.move_to(None, reason=f"Stagepass: no ticket for Space #{space.id}")
                except discord.HTTPException as exc:
                    await self._refused(member.guild, space, channel, exc)
                    return True
                self._moved_out[key] = voice
                log.info("disconnected from the Stage", space_id=space.id, member=member.id)
                await self.core.outbox.send(
                    actor.key, f"You were disconnected from {channel.mention}: {refused.message}"
                )
                return False
            return True

    def left(self, member: discord.Member) -> None:
        """Discord reports `member` gone from the voice channel they were in: a refusal at
        their next join is a new one."""
        self._moved_out.pop((member.guild.id, member.id), None)

    async def recheck(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, user_id: int
    ) -> None:
        """Someone lost a reason to listen (a refund, a revoked ticket, no longer co-host):
        if they are on the live Space's channel, the rule is asked again. (Losing Connect
        does not take anyone out of a channel in Discord.)"""
        channel = self.venue(guild, row)
        member = guild.get_member(user_id)
        if channel is None or member is None or space.status != SpaceStatus.LIVE:
            return
        voice = member.voice
        if voice is not None and voice.channel is not None and voice.channel.id == channel.id:
            await self.admit(member, channel, space)

    # --- helpers -------------------------------------------------------------------------

    async def _allow(
        self, channel: Venue, target: discord.Role | discord.Member | None, space: Space
    ) -> None:
        if target is not None and channel.overwrites_for(target).connect is not True:
            await channel.set_permissions(
                target, connect=True, view_channel=True, reason=_reason(space)
            )

    async def _refused(
        self, guild: discord.Guild, space: Space, channel: Venue, exc: discord.HTTPException
    ) -> None:
        host = await self.core.identities.get(space.host_id)
        await self.alerts.once(
            guild,
            "stage_permissions",
            f"Stagepass could not keep {channel.mention} to the ticket holders of "
            f"“{space.title}” (#{space.id}): {exc.text or exc.status}.\nTo fix: give the "
            "bot's role **Manage Roles**, **Manage Channels** and **Move Members**, or allow "
            "it **Manage Permissions** and **Move Members** on that channel.",
            int(host.user_id) if host.user_id.isdigit() else None,
        )


def _connects(channel: Venue, role: discord.Role) -> bool:
    """Whether a member with only @everyone and `role` may join `channel` (Discord hides a
    channel without View Channel, and then Connect does not count)."""
    permissions = channel.permissions_for(role)
    return permissions.view_channel and permissions.connect


def _reason(space: Space) -> str:
    return f"Stagepass: only ticket holders of Space #{space.id} while it is live"
