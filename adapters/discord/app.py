"""The Discord adapter assembled: the client (`client`), core events -> Discord
(`notifier`), members' interactions -> the core (`interactions`), and the tasks they run.

`DiscordAdapter` owns every task it starts (handlers of gateway events, interactions in
flight, the upkeep loop) in one `TaskGroup` and closes in order: finish what is in flight,
leave voice, close the client, cancel and await the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

import discord
import structlog

from adapters.discord.alerts import Alerts
from adapters.discord.announcements import Announcer, announcement_link
from adapters.discord.client import StagepassClient
from adapters.discord.config import DiscordConfig
from adapters.discord.dms import DirectMessages
from adapters.discord.interactions import Interactions
from adapters.discord.members import guild_of
from adapters.discord.notifier import Notifier
from adapters.discord.roles import TicketRoles
from adapters.discord.stage import StageSync
from adapters.discord.stage_access import StageAccess
from adapters.discord.store import DiscordStore
from bot.announcements import AnnouncementLink
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.tasks import TaskGroup

log = structlog.get_logger(__name__)


class DiscordAdapter:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        config: DiscordConfig,
        *,
        ready_timeout: float = 60.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`client_options` go to `discord.Client` (tests shorten `guild_ready_timeout`)."""
        self.core = core
        self.config = config
        self.tasks = TaskGroup("discord", failed="Discord handler failed")
        self.ready = asyncio.Event()
        self._wake = asyncio.Event()
        self.interactions = Interactions(core, dispatcher, config, self.tasks)
        self.client = StagepassClient(self.interactions, self, **(client_options or {}))
        self.store = DiscordStore(core.db, core.clock)
        dms = DirectMessages(self.client)
        alerts = Alerts(self.client, config, dms)
        self.access = StageAccess(core, self.client, config, self.store, alerts)
        self.roles = TicketRoles(core, config, self.store, alerts, self.access)
        self.stage = StageSync(core, self.client, config, self.store, alerts, self.access)
        self.notifier = Notifier(
            core,
            self.client,
            config,
            self.store,
            announcer=Announcer(core, self.client, config, self.store, alerts),
            roles=self.roles,
            stage=self.stage,
            access=self.access,
            alerts=alerts,
            dms=dms,
            ready=self.ready,
            ready_timeout=ready_timeout,
        )

    def subscribe(self) -> None:
        """Listen to the core's events and guard its Space starts (once per core)."""
        self.core.spaces.add_start_check(self.access.claim)
        self.core.announcements.register(self.announcement_link)
        self.notifier.subscribe(self.core.bus)

    async def announcement_link(self, space_id: int) -> AnnouncementLink | None:
        """The link to the Space's announcement here (the public page's call to action)."""
        space = await self.core.spaces.get(space_id)
        guild = guild_of(space.community_id)
        rows = await self.store.rows(space_id)
        home = [row for row in rows if row.guild_id == str(guild)]  # its own server first
        return announcement_link((home or rows)[0] if rows else None)

    # --- life cycle ----------------------------------------------------------------------

    async def run(self, token: str, stop: asyncio.Event) -> None:
        """Connect and serve until `stop` is set, then close and await everything owned.
        Raises what ended the client early (a bad token, say), after logging it."""
        await self.core.db.warm()  # the first command does not configure the ORM
        # only the client can fail here (the upkeep loop catches its own errors)
        running = TaskGroup("discord", failed="the Discord client stopped")
        client = running.spawn(self.client.start(token), name="client")
        stopping = running.spawn(stop.wait(), name="stop")
        running.spawn(self._upkeep(), name="upkeep")
        running.spawn(self._watch_stages(), name="stage-watch")
        try:
            await asyncio.wait({client, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self.close()
            await running.close()
        error = None if client.cancelled() else client.exception()
        if error is not None and not stop.is_set():
            raise error

    async def close(self) -> None:
        """Let in-flight interactions and handlers finish (up to 10 s), then cancel what is
        left; leave voice, then close the client."""
        await self.tasks.close(grace=10)
        if self.stage.bridges is not None:
            await self.stage.bridges.aclose()  # leave voice before the gateway goes
        await self.client.close()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as an owned task; dropped once the adapter is closing."""
        if self.tasks.closed:
            work.close()
            log.debug("Discord event dropped: shutting down", handler=name)
            return
        self.tasks.spawn(work, name=name, handler=name)

    async def _upkeep(self) -> None:
        """Every DISCORD_RETRY_SECONDS: take back the roles of tickets another process closed,
        retry refused role changes and turn "interested" marks on scheduled events into
        reminders. Role changes in Discord wake it early."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.retry_seconds)
                woken = True
            except TimeoutError:
                woken = False
            self._wake.clear()
            if not self.ready.is_set() or self.client.is_closed():
                continue
            if self.tasks.closed:
                return
            # a round is an owned task like any other: close() lets it finish
            await asyncio.wait({self.tasks.spawn(self._upkeep_round(woken), name="upkeep-round")})

    async def _upkeep_round(self, woken: bool) -> None:
        try:
            await self.notifier.replay_closures()
            await self.notifier.retry_roles()
            if not woken:
                for guild in self.client.guilds:
                    if self.config.serves(guild.id):
                        await self.stage.sync_interested(guild)
        except Exception:
            log.exception("Discord upkeep failed; trying again next round")

    async def _watch_stages(self) -> None:
        """Every `DiscordConfig.recheck_seconds` while connected: who is on each live
        Space's channel is checked again (`StageSync.recheck`), so what another process
        changed (a refund by a Stripe webhook) reaches the Stage and the bridge."""
        while True:
            await asyncio.sleep(self.config.recheck_seconds)
            if self.tasks.closed:
                return
            if self.ready.is_set() and not self.client.is_closed():
                await asyncio.wait({self.tasks.spawn(self._recheck(), name="stage-recheck")})

    async def _recheck(self) -> None:
        try:
            await self.stage.recheck()
        except Exception:
            log.exception("checking the live Stages failed; trying again next round")

    # --- what the gateway reports (`client.Gateway`) ------------------------------------

    def connected(self) -> None:
        self.ready.set()

    def guild_ready(self, guild: discord.Guild) -> None:
        """Sync the slash commands there and catch up with what happened while away."""
        if self.config.serves(guild.id):
            self._spawn(self._guild_ready(guild), f"guild-ready:{guild.id}")

    async def _guild_ready(self, guild: discord.Guild) -> None:
        await self.client.sync_commands(guild)
        await self.notifier.reconcile(guild)

    def voice_changed(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        self._spawn(self.stage.voice_changed(member, before, after), f"voice:{member.id}")

    def interested(self, event: discord.ScheduledEvent, user: discord.User) -> None:
        self._spawn(self._interested(event, user), f"interested:{event.id}")

    async def _interested(self, event: discord.ScheduledEvent, user: discord.User) -> None:
        row = await self.store.by_event(event.id)
        guild = self.client.get_guild(event.guild_id)
        if row is not None and guild is not None:
            await self.stage.interested(guild, row.space_id, user)

    def roles_changed(self) -> None:
        """Retry refused role changes now."""
        self._wake.set()

    def channel_changed(self, channel: discord.abc.GuildChannel) -> None:
        """A live Space's bridge may start (its channel was locked) or must stop (opened);
        only while Stagepass leaves the channel's permissions to the server."""
        if self.config.ticket_only_stage or self.stage.bridges is None:
            return
        if self.config.serves(channel.guild.id):
            self._spawn(self.notifier.on_channel_changed(channel), f"channel:{channel.id}")
