"""Guild Scheduled Events, the Stage instance, and one speaker queue for Discord's Stage
and Stagepass's stage.

- Announcing creates a scheduled event (a Stage event in the configured Stage channel,
  else an external one pointing at the web room), edited with the Space and started,
  ended or cancelled with it. Members who mark it "interested" get Stagepass reminders.
- At start the bot opens a Stage instance linked to the event.
- Request-to-speak in Discord raises the member's hand in Stagepass; a moderator
  promoting or demoting in Discord's own UI promotes or demotes in Stagepass (speaker
  caps apply: over the cap, the member is suppressed again). The reverse: Stagepass
  promotions lift the suppress flag, demotions set it, mutes server-mute, removals
  disconnect.
- The voice bridge (`audio.bridge`), where the Space's `BridgeMode` (the host's
  `/space edit bridge:`, else DISCORD_VOICE_BRIDGE) turns it on: the bot joins the Stage,
  or a voice channel named in DISCORD_STAGE_CHANNEL, and the room lists its members with
  their roles. A server mute in Discord mutes on the Space's stage too. In a voice channel
  (no speaker rules) only the host and co-hosts are heard, and with `bridge:speak` also
  ticket holders and moderators (`seat`).

Callers hold the Space's lock around the methods taking a row.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
import structlog

from adapters.discord.members import actor_for, bot_actor, split_key, user_ref
from adapters.discord.models import DiscordSpace
from adapters.discord.stage_access import Venue, venue
from bot.actors import Actor
from bot.errors import UserError
from bot.events import StageChanged
from bot.models import BridgeMode, Platform, Space, SpaceStatus
from bot.services.stage import Seat as CoreSeat
from bot.services.stage import SeatRole

if TYPE_CHECKING:
    from adapters.discord.alerts import Alerts
    from adapters.discord.config import DiscordConfig
    from adapters.discord.stage_access import StageAccess
    from adapters.discord.store import DiscordStore
    from audio.bridge import DiscordBridges
    from audio.bridge.speakers import Seat
    from bot.core import Core

Bridgeable = Venue


log = structlog.get_logger(__name__)


@dataclass(eq=False, repr=False)
class StageSync:
    core: Core
    client: discord.Client
    config: DiscordConfig
    store: DiscordStore
    #: tells the host and moderators what Discord refused
    alerts: Alerts
    #: the one-Space-per-Stage lock and who may listen
    access: StageAccess
    _bridges: DiscordBridges | None = field(default=None, init=False)
    #: the mode each running bridge was started in
    _bridged: dict[int, BridgeMode] = field(default_factory=dict, init=False)

    @property
    def bridges(self) -> DiscordBridges | None:
        """Set by `install` when the audio room is installed; the bridges then ask `seat`
        what the Space says about each member of a bridged channel."""
        return self._bridges

    @bridges.setter
    def bridges(self, bridges: DiscordBridges | None) -> None:
        self._bridges = bridges
        if bridges is not None:
            bridges.seats = self.seat

    # --- scheduled events ----------------------------------------------------------------

    async def schedule(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, *, runs_stage: bool = True
    ) -> None:
        """Create the Space's scheduled event, once: on the Stage in the server it is run
        from (`runs_stage`), else an external event that points at the room."""
        if row.event_id is not None or space.status != SpaceStatus.SCHEDULED:
            return
        stage = self.config.stage_channel(guild) if runs_stage else None
        try:
            if stage is not None:
                event = await guild.create_scheduled_event(
                    name=space.title[:100],
                    start_time=space.starts_at,
                    entity_type=discord.EntityType.stage_instance,
                    channel=stage,
                    privacy_level=discord.PrivacyLevel.guild_only,
                    description=self._describe(space),
                    reason=f"Stagepass Space #{space.id}",
                )
            else:
                event = await guild.create_scheduled_event(
                    name=space.title[:100],
                    start_time=space.starts_at,
                    end_time=self.core.spaces.ends_at(space),
                    entity_type=discord.EntityType.external,
                    location=self._room(space)[:100],
                    privacy_level=discord.PrivacyLevel.guild_only,
                    description=self._describe(space),
                    reason=f"Stagepass Space #{space.id}",
                )
        except discord.Forbidden as exc:
            await self._missing(
                guild, space, "manage_events", exc, "**Create Events** and **Manage Events**"
            )
            return
        row.event_id = str(event.id)
        row.stage_channel_id = str(stage.id) if stage is not None else None
        await self.store.save(row)

    async def updated(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, *, runs_stage: bool = True
    ) -> None:
        if space.status == SpaceStatus.LIVE and runs_stage:
            await self.bridge(guild, space, row)
        event = await self._event(guild, row)
        if event is None or event.status != discord.EventStatus.scheduled:
            return
        if event.entity_type == discord.EntityType.external:
            await event.edit(
                name=space.title[:100],
                description=self._describe(space),
                start_time=space.starts_at,
                end_time=self.core.spaces.ends_at(space),
            )
        else:
            await event.edit(
                name=space.title[:100],
                description=self._describe(space),
                start_time=space.starts_at,
            )

    async def started(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, *, runs_stage: bool = True
    ) -> None:
        """Open the Stage instance (which starts a linked Stage event), or start the
        external event; a server that shows a Space run from another opens no Stage."""
        stage = self._stage_of(guild, row) if runs_stage else None
        event = await self._event(guild, row)
        if stage is not None:
            try:
                await stage.create_instance(
                    topic=space.title[:120],
                    privacy_level=discord.PrivacyLevel.guild_only,
                    scheduled_event=event if event is not None else discord.utils.MISSING,
                    reason=f"Stagepass Space #{space.id} is live",
                )
            except discord.Forbidden as exc:
                await self._missing(
                    guild,
                    space,
                    "stage_instance",
                    exc,
                    "**Manage Channels**, **Mute Members** and **Move Members** "
                    "on the Stage channel",
                )
            await self.bridge(guild, space, row)
            return
        if event is not None and event.status == discord.EventStatus.scheduled:
            await event.start(reason=f"Stagepass Space #{space.id} is live")
        if runs_stage:
            await self.bridge(guild, space, row)

    async def ended(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, *, runs_stage: bool = True
    ) -> None:
        await self._unbridge(space)
        stage = self._stage_of(guild, row) if runs_stage else None
        if stage is not None:
            try:
                instance = stage.instance or await stage.fetch_instance()
                await instance.delete(reason=f"Stagepass Space #{space.id} ended")
            except discord.NotFound:
                pass
        # closing a Stage instance completes its event; an external one is ended here
        event = await self._event(guild, row, fresh=True)
        if event is not None and event.status == discord.EventStatus.active:
            await event.end(reason=f"Stagepass Space #{space.id} ended")
        elif event is not None and event.status == discord.EventStatus.scheduled:
            await event.cancel(reason=f"Stagepass Space #{space.id} ended")

    async def cancelled(
        self, guild: discord.Guild, space: Space, row: DiscordSpace, *, runs_stage: bool = True
    ) -> None:
        if space.started_at is not None:  # cancelled while live: close the Stage as an end does
            await self.ended(guild, space, row, runs_stage=runs_stage)
            return
        await self._unbridge(space)
        event = await self._event(guild, row)
        if event is not None and event.status == discord.EventStatus.scheduled:
            await event.cancel(reason=f"Stagepass Space #{space.id} was cancelled")

    async def sync_interested(self, guild: discord.Guild) -> None:
        """Members marked "interested" in a Space's event get its reminders."""
        for space in await self.core.spaces.list_spaces(f"discord:{guild.id}"):
            if space.status != SpaceStatus.SCHEDULED or space.id is None:
                continue
            row = await self.store.get(space.id, guild.id)
            event = await self._event(guild, row) if row is not None else None
            if event is None:
                continue
            async for user in event.users(limit=None):
                await self.interested(guild, space.id, user)

    async def interested(self, guild: discord.Guild, space_id: int, user: discord.abc.User) -> None:
        if user.bot:
            return
        actor = Actor(Platform.DISCORD, str(guild.id), str(user.id), user.display_name)
        identity = await self.core.identities.ensure(actor)
        await self.core.reminders.subscribe(identity, space_id, True)

    # --- the voice bridge ----------------------------------------------------------------

    async def bridge(self, guild: discord.Guild, space: Space, row: DiscordSpace) -> None:
        """Run the Space's bridge as its `BridgeMode` says (a live Space only); a changed
        mode restarts it, so everyone's seat is looked up again."""
        if self.bridges is None or space.id is None:
            return
        space_id = space.id
        mode = self.core.spaces.bridge_mode(space)
        channel = self._channel_of(guild, row)
        if mode == BridgeMode.OFF or channel is None:
            await self._unbridge(space)
            return
        if open_to := self.access.open_to(guild, channel, space, row):
            await self._unbridge(space)
            await self._open_channel(guild, space, channel, open_to)
            return
        if self._bridged.get(space_id, mode) != mode:
            await self._unbridge(space)
        self._bridged[space_id] = mode
        self.alerts.forget(guild, _open_channel_alert(space))
        await self.bridges.start(space_id, channel)

    async def _open_channel(
        self, guild: discord.Guild, space: Space, channel: Bridgeable, open_to: list[discord.Role]
    ) -> None:
        """Tell the host (and the moderators) once why a paid Space's bridge is not running:
        its channel is open to people without a ticket (`StageAccess.open_to`)."""
        log.warning(
            "voice bridge not started: the channel is open to members without a ticket",
            guild=guild.id,
            channel=channel.id,
            space_id=space.id,
            open_to_roles=[role.id for role in open_to],
        )
        who = ", ".join(
            "everyone in the server"
            if role.is_default()
            else f"the role **{discord.utils.escape_mentions(role.name)}**"
            for role in open_to
        )
        host = await self.core.identities.get(space.host_id)
        await self.alerts.once(
            guild,
            _open_channel_alert(space),
            f"The Discord voice bridge of “{space.title}” (#{space.id}) is not running: "
            f"{channel.mention} is open to {who}, so people without a ticket would hear this "
            "paid Space there, and DISCORD_TICKET_ONLY_STAGE is off.\nTo fix, either: "
            f"deny **Connect** on {channel.mention} to everyone but the ticket holders (the "
            "bridge starts as soon as the channel is locked), or set "
            "DISCORD_TICKET_ONLY_STAGE=true so Stagepass keeps the channel to ticket holders "
            "while a Space is live.",
            int(host.user_id) if host.user_id.isdigit() else None,
        )

    async def _unbridge(self, space: Space) -> None:
        if self.bridges is not None and space.id is not None:
            self._bridged.pop(space.id, None)
            await self.bridges.stop(space.id)

    async def seat(self, space_id: int, member: discord.Member) -> Seat:
        """The core's seat rule for a member of the bridged channel, mapped for the bridge:
        admitted (may listen: the room lists only them), host or co-host, muted on the
        stage, and whether they may speak in a voice channel."""
        from audio.admission import Role
        from audio.bridge.speakers import Seat  # the bridge is optional: imported when used

        space = await self.core.spaces.get(space_id)
        seat = await self._core_seat(member, space)
        staff = seat.role in (SeatRole.HOST, SeatRole.COHOST)
        return Seat(
            admitted=seat.may_listen,
            role=Role(seat.role.value) if staff else None,
            may_speak=self.core.stage.may_speak_in_voice(space, seat),
            muted=seat.muted,
        )

    async def _core_seat(self, member: discord.Member, space: Space) -> CoreSeat:
        return await self.core.stage.seat_of(actor_for(member, self.config.moderator_roles), space)

    async def reseat(self, space_id: int, user_id: int) -> None:
        """Someone's right to listen changed (a refund, a revoked ticket, no longer
        co-host): the bridge asks again now, so the room drops them before Discord has
        moved them out."""
        if self.bridges is not None:
            await self.bridges.reseat(space_id, user_id)

    async def recheck(self) -> None:
        """Ask the core again about everyone on the channel of each live Space this process
        serves: a refund, a revoked ticket or a removal made by another process (the Stripe
        webhook on a web worker) reaches this one through the database, as the room's gate
        sees it at a listener's next poll. One who may no longer listen leaves the bridged
        room and is moved out (DISCORD_TICKET_ONLY_STAGE), else loses the Stage's speaker
        seat; one who may listen again (a ticket given to them) is listed."""
        for lock in await self.store.live_stages():
            guild = self.client.get_guild(int(lock.guild_id))
            channel = guild.get_channel(int(lock.channel_id)) if guild is not None else None
            if guild is None or not self.config.serves(guild.id):
                continue
            if not isinstance(channel, discord.StageChannel | discord.VoiceChannel):
                continue
            members = [m for m in channel.members if not m.bot]
            if members:
                space = await self.core.spaces.get(lock.space_id)
                actors = [actor_for(m, self.config.moderator_roles) for m in members]
                seats = await self.core.stage.seats_of(actors, space)  # one look for all
                for member, seat in zip(members, seats, strict=True):
                    await self._recheck(member, channel, space, seat)

    async def _recheck(
        self, member: discord.Member, channel: Bridgeable, space: Space, seat: CoreSeat
    ) -> None:
        assert space.id is not None
        listed = self.bridges is not None and self.bridges.lists(space.id, member.id)
        if seat.may_listen:
            if not listed:
                await self.reseat(space.id, member.id)
            return
        if listed:
            await self.reseat(space.id, member.id)
        if not await self.access.admit(member, channel, space):
            return  # moved out and told why
        voice = member.voice
        if isinstance(channel, discord.StageChannel) and voice is not None and not voice.suppress:
            try:
                await member.edit(
                    suppress=True, reason=f"Stagepass: may not listen to Space #{space.id}"
                )
            except discord.Forbidden as exc:
                await self._cannot_moderate(member.guild, space, exc)

    # --- Discord's Stage -> Stagepass ----------------------------------------------------

    async def voice_changed(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        channel = after.channel
        if before.channel is not None and (channel is None or channel.id != before.channel.id):
            self.access.left(member)
        if channel is None or member.bot:
            return
        if not isinstance(channel, discord.StageChannel) and (
            channel.id not in self.config.stage_channels
        ):
            return  # a voice channel Spaces do not use
        space = await self.live_on(member.guild, channel.id)
        if space is None or space.id is None:
            return
        same_channel = before.channel is not None and before.channel.id == channel.id
        if not same_channel and not await self.access.admit(member, channel, space):
            return  # no ticket for the live Space: disconnected and told why
        if same_channel and before.mute != after.mute:
            await self._muted_in_discord(member, space, after.mute)
        if not isinstance(channel, discord.StageChannel):
            return
        if not same_channel and after.suppress and await self._hosts(member, space):
            # hosts and co-hosts are always on stage
            await member.edit(suppress=False, reason=f"Stagepass: hosts Space #{space.id}")
            return
        actor = actor_for(member, self.config.moderator_roles)
        asked = after.requested_to_speak_at is not None and after.suppress
        if asked and (not same_channel or before.requested_to_speak_at is None):
            await self._quietly(self.core.stage.raise_hand(actor, space.id, True))
        elif (
            same_channel
            and after.suppress
            and before.requested_to_speak_at is not None
            and after.requested_to_speak_at is None
            and before.suppress
        ):
            await self._quietly(self.core.stage.raise_hand(actor, space.id, False))
        if same_channel and before.suppress != after.suppress:
            if after.suppress:
                await self._demoted_in_discord(member, space)
            else:
                await self._promoted_in_discord(member, space)

    async def _promoted_in_discord(self, member: discord.Member, space: Space) -> None:
        assert space.id is not None
        if await self._on_stage(member, space):
            return  # Stagepass already agrees (often: our own promotion echoing back)
        me = self.client.user
        assert me is not None
        try:
            await self.core.stage.promote(bot_actor(member.guild, me), space.id, user_ref(member))
        except UserError as exc:
            log.info(
                "Discord promotion refused by Stagepass", space_id=space.id, reason=exc.message
            )
            try:
                await member.edit(suppress=True, reason=f"Stagepass: {exc.message}"[:500])
            except discord.Forbidden as refused:  # the room still never mixes them
                await self._cannot_moderate(member.guild, space, refused)

    async def _muted_in_discord(self, member: discord.Member, space: Space, muted: bool) -> None:
        """A moderator server-muted (or unmuted) someone in Discord: the same on the stage.
        Our own mute echoing back is refused by the core as already done."""
        assert space.id is not None
        me = self.client.user
        assert me is not None
        await self._quietly(
            self.core.stage.mute(bot_actor(member.guild, me), space.id, user_ref(member), muted)
        )

    async def _demoted_in_discord(self, member: discord.Member, space: Space) -> None:
        assert space.id is not None
        if (await self._core_seat(member, space)).role != SeatRole.SPEAKER:
            return
        me = self.client.user
        assert me is not None
        await self._quietly(
            self.core.stage.demote(bot_actor(member.guild, me), space.id, user_ref(member))
        )

    async def _on_stage(self, member: discord.Member, space: Space) -> bool:
        """Host, co-host or a Stagepass speaker: on stage by right (the core's seat rule)."""
        return (await self._core_seat(member, space)).may_speak

    async def _hosts(self, member: discord.Member, space: Space) -> bool:
        seat = await self._core_seat(member, space)
        return seat.role in (SeatRole.HOST, SeatRole.COHOST)

    # --- Stagepass -> Discord's Stage ----------------------------------------------------

    async def mirror(self, event: StageChanged, stage_guild_id: int) -> None:
        """A stage change made in Stagepass, done on the Discord Stage (and the bridge's list
        of who is in) too: for members of the server the Space is run from
        (`stage_guild_id`)."""
        ids = split_key(event.identity_key)
        guild = self.client.get_guild(ids[0]) if ids else None
        if ids is None or guild is None or guild.id != stage_guild_id:
            return
        if event.change in ("removed", "allowed"):
            # whether they may listen changed: the bridged room lists or drops them now
            # (one let back in while still in the channel needs no voice change first)
            await self.reseat(event.space_id, ids[1])
        member = guild.get_member(ids[1])
        voice = member.voice if member is not None else None
        if member is None or voice is None or voice.channel is None:
            return  # not in Discord's voice (maybe in the web room)
        row = await self.store.get(event.space_id, guild.id)
        channel = self._channel_of(guild, row)
        if channel is None or voice.channel.id != channel.id:
            return
        on_stage = isinstance(channel, discord.StageChannel)
        muted = event.change == "muted"
        reason = f"Stagepass: {event.change} in Space #{event.space_id}"
        try:
            match event.change:
                case "promoted" if on_stage and voice.suppress:
                    await member.edit(suppress=False, reason=reason)
                case "demoted" if on_stage and not voice.suppress:
                    await member.edit(suppress=True, reason=reason)
                case "muted" | "unmuted" if voice.mute != muted:
                    await member.edit(mute=muted, reason=reason)
                case "removed":
                    await member.move_to(None, reason=reason)
        except discord.Forbidden as exc:
            space = await self.core.spaces.get(event.space_id)
            await self._cannot_moderate(guild, space, exc)

    # --- helpers -------------------------------------------------------------------------

    async def live_on(self, guild: discord.Guild, channel_id: int) -> Space | None:
        """The live Space on this Stage channel (the latest started, if several)."""
        live = [
            s
            for s in await self.core.spaces.list_spaces(f"discord:{guild.id}")
            if s.status == SpaceStatus.LIVE and s.id is not None
        ]
        for space in sorted(live, key=lambda s: s.started_at or s.starts_at, reverse=True):
            assert space.id is not None
            run_from = await self.core.communities.stage_on(
                space.id, space.community_id, Platform.DISCORD
            )
            if run_from != f"{Platform.DISCORD.value}:{guild.id}":
                continue  # shown here, run on another server's Stage
            row = await self.store.get(space.id, guild.id)
            channel = self._channel_of(guild, row)
            if channel is not None and channel.id == channel_id:
                return space
        return None

    def _channel_of(self, guild: discord.Guild, row: DiscordSpace | None) -> Bridgeable | None:
        """The Space's Stage channel, else the configured voice channel."""
        return venue(self.config.stage_channels, guild, row)

    def _stage_of(self, guild: discord.Guild, row: DiscordSpace) -> discord.StageChannel | None:
        if row.stage_channel_id is not None:
            channel = guild.get_channel(int(row.stage_channel_id))
            if isinstance(channel, discord.StageChannel):
                return channel
        return self.config.stage_channel(guild)

    async def _event(
        self, guild: discord.Guild, row: DiscordSpace, *, fresh: bool = False
    ) -> discord.ScheduledEvent | None:
        if row.event_id is None:
            return None
        event = None if fresh else guild.get_scheduled_event(int(row.event_id))
        if event is not None:
            return event
        try:
            return await guild.fetch_scheduled_event(int(row.event_id))
        except discord.NotFound:
            return None

    def _room(self, space: Space) -> str:
        return f"{self.config.public_url}/rooms/{space.id}"

    def _describe(self, space: Space) -> str:
        text = space.description.strip()
        tail = f"Tickets: use the Buy button on the announcement, or /ticket buy {space.id}."
        return (f"{text}\n\n{tail}" if text else tail)[:1000]

    async def _missing(
        self, guild: discord.Guild, space: Space, key: str, exc: discord.HTTPException, needs: str
    ) -> None:
        host = await self.core.identities.get(space.host_id)
        await self.alerts.once(
            guild,
            key,
            f"Stagepass could not sync “{space.title}” (#{space.id}) with Discord: "
            f"{exc.text or exc.status}.\nTo fix: give the bot's role {needs}.",
            int(host.user_id) if host.user_id.isdigit() else None,
        )

    async def _cannot_moderate(
        self, guild: discord.Guild, space: Space, exc: discord.HTTPException
    ) -> None:
        await self._missing(
            guild,
            space,
            "stage_moderation",
            exc,
            "**Mute Members** and **Move Members** on the Stage channel",
        )

    @staticmethod
    async def _quietly(work: Awaitable[Any]) -> None:
        """Run a stage change Discord asked for; the core saying no is not an error."""
        try:
            await work
        except UserError as exc:
            log.info("stage change from Discord not applied", reason=exc.message)


def _open_channel_alert(space: Space) -> str:
    """The `Alerts` key of a Space's bridge refused on an open channel."""
    return f"open_channel:{space.id}"
