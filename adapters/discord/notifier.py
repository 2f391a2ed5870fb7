"""Core events -> Discord: the announcement and its replies, the ticket-holder role, the
scheduled event, the Stage and its lock, DMs and the moderators' alerts.

Each handler runs in the event bus's own task, so Discord being slow never slows a
command. A change to one Space takes the Space's lock and is made in steps: a step Discord
refuses is logged (`_step`) and the rest go on; what needs the host or the moderators
is told to them (`alerts`). Events that arrive before the gateway is ready wait for it
(up to `ready_timeout`); after a restart `reconcile` catches up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import discord
import structlog

from adapters.discord import render
from adapters.discord.alerts import Alerts
from adapters.discord.announcements import Announcer
from adapters.discord.config import DiscordConfig
from adapters.discord.dms import DirectMessages
from adapters.discord.members import guild_of, split_key
from adapters.discord.models import DiscordSpace
from adapters.discord.roles import TicketRoles
from adapters.discord.stage import StageSync
from adapters.discord.stage_access import StageAccess
from adapters.discord.store import DiscordStore, KeyedLocks
from bot.chat_events import ChatRoutes, subscribe
from bot.core import Core
from bot.events import (
    CohostChanged,
    DirectMessage,
    EventBus,
    PaymentDisputed,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceEnded,
    SpaceEvent,
    SpaceStarted,
    SpaceUpdated,
    StageChanged,
    TicketClosed,
    TicketIssued,
    TipReceived,
)
from bot.models import Platform, Space, SpaceStatus
from bot.notices import dispute_alert

log = structlog.get_logger(__name__)

SpaceWork = Callable[[discord.Guild, Space, DiscordSpace, bool], Awaitable[None]]
"""Work on one server's objects of a Space: (server, Space, its row there, whether the
server runs the Space's Stage)."""


CLOSURE_MARGIN = timedelta(minutes=1)
"""How far back `Notifier.replay_closures` looks again each round: a closure committed late,
or stamped by a slower clock, is still seen (and one seen before is not replayed)."""


class Notifier:
    def __init__(
        self,
        core: Core,
        client: discord.Client,
        config: DiscordConfig,
        store: DiscordStore,
        *,
        announcer: Announcer,
        roles: TicketRoles,
        stage: StageSync,
        access: StageAccess,
        alerts: Alerts,
        dms: DirectMessages,
        ready: asyncio.Event,
        ready_timeout: float = 60.0,
    ) -> None:
        """`ready` is set once the gateway session is ready."""
        self.core = core
        self.client = client
        self.config = config
        self.store = store
        self.locks = KeyedLocks()
        self.announcer = announcer
        self.roles = roles
        self.stage = stage
        self.access = access
        self.alerts = alerts
        self.dms = dms
        self.ready = ready
        self.ready_timeout = ready_timeout
        #: the Discord work an announcement event brings beyond the refresh (a seat taken
        #: or freed only refreshes)
        self._space_work: dict[type[SpaceEvent], Callable[[Any], Awaitable[None]]] = {
            SpaceAnnounced: self.on_announced,
            SpaceUpdated: self.on_updated,
            SpaceStarted: self.on_started,
            SpaceEnded: self.on_over,
            SpaceCancelled: self.on_over,
            TicketIssued: self.on_ticket_issued,
            TicketClosed: self.on_ticket_closed,
        }
        self._closures_until: datetime | None = None
        """Ticket closures up to this time are replayed (`replay_closures`), less a margin."""
        self._replayed: dict[str, datetime] = {}
        """Tickets whose closure was replayed within the margin, by when they closed."""

    def subscribe(self, bus: EventBus) -> None:
        routes = ChatRoutes(
            announcement=self.on_space_changed,
            direct_message=self.on_direct_message,
            people=self.on_people,
            stage=self.on_stage_changed,
            tip=self.on_tip,
            dispute=self.on_payment_disputed,
        )
        subscribe(bus, self.core.outbox, Platform.DISCORD, routes)

    # --- catching up ---------------------------------------------------------------------

    async def reconcile(self, guild: discord.Guild) -> None:
        """Post announcements (and events, roles) for Spaces announced while offline,
        refresh the others, retry refused role changes. Never posts anything twice."""
        for space in await self.core.spaces.list_spaces(f"discord:{guild.id}"):
            assert space.id is not None
            await self._settle(guild, space.id)
            await self._step(space.id, "announcement refresh", self.announcer.refresh(space.id))
        await self.retry_roles(guild)

    async def retry_roles(self, only: discord.Guild | None = None) -> None:
        refused: set[int] = set()
        owed = dict.fromkeys((task.space_id, task.guild_id) for task in await self.store.tasks())
        for space_id, guild_id in owed:
            guild = self.client.get_guild(int(guild_id))
            if guild is None or guild.id in refused or (only is not None and only.id != guild.id):
                continue
            space = await self.core.spaces.get(space_id)
            async with self.locks.hold(space_id):
                row = await self.store.get_or_new(space_id, guild.id)
                if not await self.roles.retry(guild, space, row):
                    refused.add(guild.id)

    async def replay_closures(self) -> None:
        """Take the Space's role back from holders whose tickets another process closed
        (a refund by the Stripe webhook on a web worker: no event reaches this process).
        Who is on the Stage is checked every few seconds (`StageSync.recheck`); a holder who
        is not keeps the role until this replays the closure from the database. The first
        round replays every closure in the Spaces not over yet (a role change is
        idempotent), later ones what closed since, with a margin for the clocks and commit
        order of the other processes."""
        since = self._closures_until
        closed = await self.core.tickets.closed_since(since, platform=Platform.DISCORD)
        for closure in closed:
            if closure.event.ticket_id in self._replayed:
                continue
            await self.on_ticket_closed(closure.event)
            self._replayed[closure.event.ticket_id] = closure.at
        if closed:
            until = closed[-1].at - CLOSURE_MARGIN
            if since is None or until > since:
                self._closures_until = until
                self._replayed = {k: at for k, at in self._replayed.items() if at > until}

    # --- core events -> Discord ----------------------------------------------------------

    async def on_space_changed(self, event: SpaceEvent) -> None:
        """Do what the event asks of Discord, then bring the announcement up to date (the
        first post of a new one is already up to date)."""
        work = self._space_work.get(type(event))
        if work is not None:
            await work(event)
        if not isinstance(event, SpaceAnnounced):
            await self._refresh(event)

    async def on_announced(self, event: SpaceAnnounced) -> None:
        for guild in await self._space_guilds(event):
            await self._settle(guild, event.space_id)

    async def on_updated(self, event: SpaceUpdated) -> None:
        async def edit(guild: discord.Guild, space: Space, row: DiscordSpace, stage: bool) -> None:
            await self.stage.updated(guild, space, row, runs_stage=stage)

        await self._locked(event, "scheduled event edit", edit)

    async def on_started(self, event: SpaceStarted) -> None:
        async def start(guild: discord.Guild, space: Space, row: DiscordSpace, stage: bool) -> None:
            await self._step(
                event.space_id,
                "Stage instance",
                self.stage.started(guild, space, row, runs_stage=stage),
            )
            await self.roles.prepare(guild, space, row)  # the host's way in, without sales
            if stage:
                await self._step(event.space_id, "Stage lock", self.access.lock(guild, space, row))
            text = render.live(space, self.access.venue(guild, row) if stage else None)
            await self._step(
                event.space_id, "live post", self.announcer.tell(guild, space.id, text)
            )

        await self._locked(event, "start of Space", start)

    async def on_over(self, event: SpaceEnded | SpaceCancelled) -> None:
        async def finish(
            guild: discord.Guild, space: Space, row: DiscordSpace, stage: bool
        ) -> None:
            sync = self.stage.ended if isinstance(event, SpaceEnded) else self.stage.cancelled
            await self._step(
                event.space_id, "scheduled event", sync(guild, space, row, runs_stage=stage)
            )
            if stage:
                await self._step(
                    event.space_id, "Stage unlock", self.access.unlock(guild, space, row)
                )
            await self.roles.delete(guild, space, row)

        await self._locked(event, "end of Space", finish)

    async def on_ticket_issued(self, event: TicketIssued) -> None:
        await self._member_role(event, event.holder_key, grant=True)

    async def on_ticket_closed(self, event: TicketClosed) -> None:
        await self._member_role(event, event.holder_key, grant=False)

    async def on_people(self, event: SpaceEvent) -> None:
        """A co-host gets (or loses) the Space's role; a reminder shows nothing here."""
        if isinstance(event, CohostChanged):
            await self._member_role(event, event.identity_key, grant=event.added)

    async def on_stage_changed(self, event: StageChanged) -> None:
        guilds = await self._space_guilds(event)
        if not guilds:
            return
        run_from = await self._stage_guild_id(event)
        if run_from is not None:
            await self._step(event.space_id, "Stage sync", self.stage.mirror(event, run_from))
        if event.change == "promoted":
            space = await self.core.spaces.get(event.space_id)
            name = await self._name(event.identity_key)
            for guild in guilds:
                here = event.identity_key.startswith(f"{Platform.DISCORD.value}:{guild.id}:")
                text = render.new_speaker(space, event.identity_key, "" if here else name)
                await self._step(
                    event.space_id, "speaker post", self.announcer.tell(guild, space.id, text)
                )

    async def on_channel_changed(self, channel: discord.abc.GuildChannel) -> None:
        """A channel changed in Discord: if a Space is live on it, its bridge is asked again
        (`StageSync.bridge`: it starts once an open channel is locked, stops if opened)."""
        if not isinstance(channel, discord.StageChannel | discord.VoiceChannel):
            return
        guild = channel.guild
        live = await self.stage.live_on(guild, channel.id)
        if live is None or live.id is None:
            return
        async with self.locks.hold(live.id):
            space = await self.core.spaces.get(live.id)
            if space.status == SpaceStatus.LIVE:
                row = await self.store.get_or_new(live.id, guild.id)
                await self._step(live.id, "voice bridge", self.stage.bridge(guild, space, row))

    async def on_direct_message(self, event: DirectMessage) -> None:
        ids = split_key(event.identity_key)
        if ids is not None and await self._guild(f"discord:{ids[0]}") is not None:
            await self.dms.deliver(
                event, self.core.outbox, await self.core.identities.zone_of(event.identity_key)
            )

    async def on_tip(self, event: TipReceived) -> None:
        guild = await self._guild(event.community_id)
        if guild is not None:
            await self._step(event.space_id or 0, "tip thanks", self.announcer.thank(guild, event))

    async def on_payment_disputed(self, event: PaymentDisputed) -> None:
        """The moderators hear of a disputed payment (the host has the core's DM)."""
        guild = await self._guild(event.community_id)
        if guild is None:
            return
        space = await self.core.spaces.get(event.space_id)
        host = await self.core.identities.get(space.host_id)
        text = dispute_alert(
            event, space, buyer=render.mention(event.holder_key), quote=render.quote
        )
        told = {int(host.user_id)} if host.user_id.isdigit() else set()
        await self._step(
            event.space_id, "dispute alert", self.alerts.tell_moderators(guild, text, told=told)
        )

    async def _member_role(self, event: SpaceEvent, identity_key: str, *, grant: bool) -> None:
        """Grant or take back the Space's role in the member's own server (a member of a
        server that shows the Space); where it runs the Stage, the bridged room lists or
        drops them at once, and one who may no longer listen is moved out."""
        ids = split_key(identity_key)
        if ids is None:
            return
        guild_id, user_id = ids

        async def change(
            guild: discord.Guild, space: Space, row: DiscordSpace, stage: bool
        ) -> None:
            if stage and space.id is not None:  # the bridged room's list first: in or out
                await self.stage.reseat(space.id, user_id)
            if grant:
                await self.roles.grant(guild, space, row, str(user_id))
            else:
                await self.roles.revoke(guild, space, row, str(user_id))
                if stage:
                    await self.access.recheck(guild, space, row, user_id)

        await self._locked(event, "ticket role", change, only=guild_id)

    async def _settle(self, guild: discord.Guild, space_id: int) -> None:
        """Give a Space its announcement and scheduled event in one server (its role comes
        with the first sale, or at the start); idempotent."""
        async with self.locks.hold(space_id):
            space = await self.core.spaces.get(space_id)
            if space.status.is_final:
                return
            assert space.id is not None
            stage = await self._stage_guild_id_of(space.id, space.community_id) == guild.id
            row = await self.store.get_or_new(space_id, guild.id)
            await self._step(space_id, "announcement", self.announcer.post(guild, space, row))
            await self._step(
                space_id,
                "scheduled event",
                self.stage.schedule(guild, space, row, runs_stage=stage),
            )

    async def _locked(
        self, event: SpaceEvent, what: str, work: SpaceWork, *, only: int | None = None
    ) -> None:
        """Do `work` in each server that shows the event's Space (`only`: in that one, if
        it does), under the Space's lock; `work` learns whether the server runs its Stage."""
        guilds = [g for g in await self._space_guilds(event) if only is None or g.id == only]
        if not guilds:
            return
        run_from = await self._stage_guild_id(event)
        async with self.locks.hold(event.space_id):
            space = await self.core.spaces.get(event.space_id)
            for guild in guilds:
                row = await self.store.get_or_new(event.space_id, guild.id)
                await self._step(
                    event.space_id, what, work(guild, space, row, guild.id == run_from)
                )

    async def _refresh(self, event: SpaceEvent) -> None:
        if await self._space_guilds(event):
            await self._step(
                event.space_id, "announcement refresh", self.announcer.refresh(event.space_id)
            )

    async def _name(self, identity_key: str) -> str:
        """The name of someone, for a server they are not a member of (not mentioned)."""
        found = await self.core.identities.by_key(identity_key)
        return found.display_name if found is not None else "someone"

    async def _space_guilds(self, event: SpaceEvent) -> list[discord.Guild]:
        """The servers of ours that show the event's Space: its own, and linked ones."""
        shown = await self.core.communities.shown_on(
            event.space_id, event.community_id, Platform.DISCORD
        )
        guilds = [await self._guild(community) for community in shown]
        return [guild for guild in guilds if guild is not None]

    async def _stage_guild_id(self, event: SpaceEvent) -> int | None:
        return await self._stage_guild_id_of(event.space_id, event.community_id)

    async def _stage_guild_id_of(self, space_id: int, community_id: str) -> int | None:
        """The server whose Stage the Space is run on (never another's)."""
        run_from = await self.core.communities.stage_on(space_id, community_id, Platform.DISCORD)
        return guild_of(run_from) if run_from is not None else None

    async def _guild(self, community_id: str) -> discord.Guild | None:
        """The server of a core event, once connected; None when it is not ours."""
        guild_id = guild_of(community_id)
        if guild_id is None or not self.config.serves(guild_id) or self.client.is_closed():
            return None
        try:
            await asyncio.wait_for(self.ready.wait(), timeout=self.ready_timeout)
        except TimeoutError:
            log.warning("Discord is not connected; the next start catches up", guild=guild_id)
            return None
        return self.client.get_guild(guild_id)

    @staticmethod
    async def _step(space_id: int, what: str, work: Awaitable[None]) -> None:
        """One Discord step of a larger change: a refusal is logged and the rest goes on."""
        try:
            await work
        except discord.HTTPException as exc:
            log.warning(
                "Discord refused a step",
                space_id=space_id,
                step=what,
                status=exc.status,
                code=exc.code,
                text=exc.text,
            )
