"""Roles and mutes stay in step between a bridged Discord channel and the room, both ways.

The real adapter (unmodified discord.py) against the fake Discord, voice side included;
the real core, the real room (with the core's stage events, as `audio.install` wires
them) and the real bridge. Fake users speak tones through the fake voice server; what the
room mixes is decoded from a listener's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from audio.bridge import DiscordBridges, VoiceBridge
from audio.fanout import PacketTrack
from audio.install import LiveAudio
from audio.registry import RoomRegistry
from audio.room import BridgedParticipant, ParticipantState, Room
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.models import BridgeMode
from bot.settings import Settings
from tests.bridge.playout import discord_quiet, handled, heard_from_discord
from tests.bridge.tones import decode_all, opus_tone, power
from tests.discord.conftest import Bot, Server, config_for, refund_elsewhere
from tests.discord.fake_discord import Channel, FakeDiscord, Member
from tests.discord.fake_discord import permissions as P
from tests.discord.fake_discord.state import VOICE
from tests.discord.fake_discord.voice import FakeVoice
from tests.waiting import PATIENCE

G = r"\d+"
TONES = {"alice": 440.0, "bob": 1000.0, "carol": 660.0, "dave": 1320.0}
"""One tone per member: what is left of someone else's speech never counts."""


@dataclass
class Bridged:
    bot: Bot
    fake: FakeDiscord
    voice: FakeVoice
    server: Server
    rooms: RoomRegistry
    channel: Channel
    """The bridged channel: the Stage, or a voice channel."""

    @property
    def room(self) -> Room:
        room = self.rooms.get(1)
        assert room is not None
        return room

    @property
    def bridge(self) -> VoiceBridge:
        bridges = self.bot.adapter.stage.bridges
        assert bridges is not None
        bridge = bridges.get(1)
        assert bridge is not None
        return bridge

    def seen(self, member: Member) -> ParticipantState | None:
        key = f"discord:{self.server.guild.id}:{member.user.id}"
        return next((p for p in self.room.state().participants if p.identity_key == key), None)

    async def until_seen(self, member: Member, what: str, **expected: Any) -> None:
        def check() -> bool:
            found = self.seen(member)
            return found is not None and all(getattr(found, k) == v for k, v in expected.items())

        await self.bot.until(check, f"{member.user.name} {what} in the room")

    async def heard(self, member: Member, ssrc: int) -> float:
        """``member`` speaks their tone for 0.6 s; its power in the room's mix."""
        tone = TONES[member.user.name]
        listener = PacketTrack(max_queue=500)
        self.room._mixer.listeners.subscribe(listener)  # a browser listener's stream
        try:
            count = handled(self.bridge) + 30
            await self.voice.speak_as(member, ssrc, opus_tone(tone, 30))
            await heard_from_discord(self.bridge, count)
            # listening on until the room is quiet: the listeners' encoder (which runs only
            # while someone listens) then ends on silence, and the next measurement starts
            # with no tail of this one
            await discord_quiet(self.room)
        finally:
            self.room._mixer.listeners.unsubscribe(listener)
        packets = [bytes(listener._queue.popleft()) for _ in range(len(listener._queue))]
        return power(decode_all(packets), tone)


@contextlib.asynccontextmanager
async def bridged(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    *,
    mode: BridgeMode,
    channel_kind: str = "stage",
    **config: Any,
) -> AsyncIterator[Bridged]:
    """`config`: `DiscordConfig` fields other than `config_for`'s."""
    overrides: dict[str, Any] = dict(config)
    channel = server.stage
    if channel_kind == "voice":
        channel = fake.add_channel(server.guild, "Lounge", VOICE)
        overrides["stage_channels"] = (channel.id,)
    async with FakeVoice(fake) as voice, RoomRegistry() as rooms:
        LiveAudio(core, registry=rooms).subscribe()
        adapter = DiscordAdapter(
            core,
            dispatcher,
            config_for(server, settings, **overrides),
            ready_timeout=10,
            client_options={"guild_ready_timeout": 0.05, "connector": voice.connector()},
        )
        adapter.subscribe()
        adapter.stage.bridges = DiscordBridges(rooms)
        stop = asyncio.Event()
        task = asyncio.create_task(adapter.run(fake.token, stop), name="test:discord-job")
        bot = Bot(adapter, task, fake)
        try:
            await bot.until(
                lambda: adapter.ready.is_set() and server.guild.id in fake.commands,
                "the bot to connect",
            )
            guild, alice = server.guild, server.host
            await bot.answer(
                await fake.slash(
                    guild,
                    alice,
                    "space create",
                    title="Bridged",
                    starts="tomorrow 18:00",
                    tickets=5,
                )
            )
            for member in (server.bob, server.carol):
                await bot.answer(await fake.slash(guild, member, "ticket buy", space=1))
            edited = await bot.answer(
                await fake.slash(guild, alice, "space edit", space=1, bridge=mode.value)
            )
            assert "Discord voice bridge: on" in edited.text()
            await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
            world = Bridged(bot, fake, voice, server, rooms, channel)
            await bot.until(
                lambda: (
                    adapter.stage.bridges is not None
                    and (b := adapter.stage.bridges.get(1)) is not None
                    and b.playing
                    and voice.bot_address is not None
                ),
                "the bridge to join",
            )
            yield world
            bot.alive()
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=PATIENCE)


async def test_stage_roles_and_mutes_follow_both_ways(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    async with bridged(core, dispatcher, settings, fake, server, mode=BridgeMode.LISTEN) as w:
        guild, bob, carol, mo = server.guild, server.bob, server.carol, server.mo
        for member in (bob, carol):
            await fake.join_voice(guild, member, server.stage)
        await w.until_seen(bob, "a listener", role="listener", via="discord")
        await w.until_seen(carol, "a listener", role="listener", via="discord")
        assert await w.heard(carol, 301) < 1.0  # a suppressed listener is not mixed

        # Discord -> room: a moderator invites bob to speak in Discord's own UI
        await fake.set_suppress(guild, bob, False)
        await w.until_seen(bob, "a speaker", role="speaker", muted=False)
        await w.bot.eventually(lambda: _speakers(core), "bob to be a Stagepass speaker")

        # room -> Discord: a Stagepass promotion lifts suppress with the real API call
        await w.bot.answer(await fake.slash(guild, mo, "stage promote", user=carol))
        [lift] = fake.calls_to("PATCH", f"/guilds/{G}/voice-states/{carol.user.id}")
        assert lift.body["suppress"] is False
        await w.until_seen(carol, "a speaker", role="speaker")
        await w.bot.until(lambda: w.bridge.admits(carol.user.id), "Discord to lift suppress")
        assert await w.heard(carol, 302) > 1.0

        # a Discord server mute: not mixed any more, and muted on the Space's stage
        await fake.server_mute(guild, bob, True)
        await w.until_seen(bob, "muted", muted=True)
        assert not w.bridge.admits(bob.user.id)
        assert await w.heard(bob, 303) < 1.0
        await w.bot.settle()
        seats = {
            s.identity.display_name: s.seat.muted for s in (await core.stage.state(1)).speakers
        }
        assert seats["bob"] is True
        assert not fake.calls_to("PATCH", f"/guilds/{G}/members/{bob.user.id}")  # no echo

        # a room mute: not mixed any more, and server-muted in Discord
        await w.bot.answer(await fake.slash(guild, mo, "stage mute", user=carol))
        await w.until_seen(carol, "muted", muted=True)
        assert not w.bridge.admits(carol.user.id)
        assert await w.heard(carol, 304) < 1.0
        [mute] = fake.calls_to("PATCH", f"/guilds/{G}/members/{carol.user.id}")
        assert mute.body == {"mute": True} and carol.mute

        # leaving the Stage leaves the room's list
        await fake.leave_voice(guild, bob)
        await w.bot.until(lambda: w.seen(bob) is None, "bob to leave the room's list")


async def _speakers(core: Core) -> bool:
    return [s.identity.display_name for s in (await core.stage.state(1)).speakers] == ["bob"]


@pytest.mark.parametrize("mode", [BridgeMode.LISTEN, BridgeMode.SPEAK])
async def test_voice_channel_mixes_ticket_holders_only_when_the_host_allows(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    mode: BridgeMode,
) -> None:
    async with bridged(
        core, dispatcher, settings, fake, server, mode=mode, channel_kind="voice"
    ) as w:
        guild, lounge = server.guild, w.channel
        for member in (server.host, server.bob, server.dave):
            await fake.join_voice(guild, member, lounge)
        allowed = mode == BridgeMode.SPEAK
        await w.until_seen(server.host, "the host", role="host")
        await w.until_seen(server.bob, "seated", role="speaker" if allowed else "listener")
        # no ticket: disconnected (the channel is the live Space's), never listed or mixed
        await w.bot.until(
            lambda: guild.voice[server.dave.user.id].channel_id is None, "dave disconnected"
        )
        assert not w.bridge.admits(server.dave.user.id)
        assert w.seen(server.dave) is None
        await w.bot.until(lambda: w.bridge.admits(server.host.user.id), "the host mixed")
        assert (await w.heard(server.host, 401) > 1.0) is True  # hosts always speak
        assert w.bridge.admits(server.bob.user.id) is allowed
        assert (await w.heard(server.bob, 402) > 1.0) is allowed  # a ticket holder


async def test_only_members_who_may_listen_are_listed_or_mixed(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    fake: FakeDiscord,
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The room lists (and mixes) a Discord member only once the Space admits them: not
    for the moment before Stagepass moves them out, nor while Discord cannot move them."""
    async with bridged(core, dispatcher, settings, fake, server, mode=BridgeMode.LISTEN) as w:
        guild, stage, bob, carol, dave = (
            server.guild,
            w.channel,
            server.bob,
            server.carol,
            server.dave,
        )
        listed: list[str] = []
        put_bridged = w.room.put_bridged

        def put(participant: BridgedParticipant) -> None:
            listed.append(participant.identity_key)
            put_bridged(participant)

        monkeypatch.setattr(w.room, "put_bridged", put)
        dave_key = f"discord:{guild.id}:{dave.user.id}"

        # no ticket: moved out and told why, never in the room
        await fake.join_voice(guild, dave, stage)
        await w.bot.until(lambda: guild.voice[dave.user.id].channel_id is None, "dave moved out")
        await w.bot.until(lambda: _told(fake, dave), "dave's DM")
        assert _told(fake, dave) == (
            f"You were disconnected from <#{stage.id}>: “Bridged” (Space #1) is live on this "
            "stage, and listening needs a ticket for it. Get one with /ticket buy 1, then join "
            "again."
        )
        # a ticket holder, and a moderator without one: listed
        await fake.join_voice(guild, bob, stage)
        await fake.join_voice(guild, server.mo, stage)
        await w.until_seen(bob, "a listener", role="listener", via="discord")
        await w.until_seen(server.mo, "a listener", role="listener", via="discord")

        # the server takes Move Members and Mute Members from the bot: dave stays on the
        # Stage, and a Discord admin makes him a speaker there
        bot_role = fake.bot_role(guild)
        denied = bot_role.permissions & ~(P.MOVE_MEMBERS | P.MUTE_MEMBERS)
        await fake.update_role(guild, bot_role, permissions=denied)
        await fake.join_voice(guild, dave, stage)
        await fake.set_suppress(guild, dave, False)
        await fake.join_voice(guild, carol, stage)  # listed in the pass that sees dave too
        await w.until_seen(carol, "a listener", role="listener")
        await w.bot.settle()
        assert guild.voice[dave.user.id].channel_id == stage.id
        assert not guild.voice[dave.user.id].suppress  # Discord would let him speak
        assert w.seen(dave) is None and not w.bridge.admits(dave.user.id)
        assert await w.heard(dave, 501) < 1.0  # his voice never reaches the web listeners

        # bob's ticket is refunded while he is on the Stage: out of the room at once, with
        # no help from Discord (the bot cannot move him out now)
        holder = await core.identities.by_key(f"discord:{guild.id}:{bob.user.id}")
        assert holder is not None and holder.id is not None
        [ticket] = await core.tickets.tickets_of(holder.id, 1)
        refunded = await w.bot.answer(
            await fake.slash(guild, server.host, "ticket refund", ticket=ticket.id)
        )
        assert f"Ticket {ticket.id} is revoked" in refunded.text()
        await w.bot.until(lambda: w.seen(bob) is None, "bob out of the room's list")
        assert guild.voice[bob.user.id].channel_id == stage.id
        assert not w.bridge.admits(bob.user.id)
        assert dave_key not in listed
        assert w.seen(carol) is not None  # still a holder


def _told(fake: FakeDiscord, member: Member) -> str:
    """The DM telling `member` why they were disconnected ("" until it arrives)."""
    found = [m.text() for m in fake.dms(member) if "disconnected" in m.text()]
    return found[-1] if found else ""


async def test_a_member_let_back_in_is_listed_again_at_once(
    core: Core, dispatcher: Dispatcher, settings: Settings, fake: FakeDiscord, server: Server
) -> None:
    """`/stage remove`, then `/stage allow`, of someone still in the channel (the bot may
    not move members out): the room drops them at the remove and lists them again at the
    allow, with no voice change in Discord in between."""
    async with bridged(core, dispatcher, settings, fake, server, mode=BridgeMode.LISTEN) as w:
        guild, stage, bob, mo = server.guild, w.channel, server.bob, server.mo
        bot_role = fake.bot_role(guild)
        await fake.update_role(guild, bot_role, permissions=bot_role.permissions & ~P.MOVE_MEMBERS)
        await fake.join_voice(guild, bob, stage)
        await w.until_seen(bob, "a listener", role="listener", via="discord")

        removed = await w.bot.answer(await fake.slash(guild, mo, "stage remove", user=bob))
        assert "was removed" in removed.text()
        assert w.seen(bob) is None and not w.bridge.admits(bob.user.id)
        assert guild.voice[bob.user.id].channel_id == stage.id  # Discord did not move him

        allowed = await w.bot.answer(await fake.slash(guild, mo, "stage allow", user=bob))
        assert "may join the Space's stage again" in allowed.text()
        listed = w.seen(bob)  # the answer waited for the bot to settle: no polling here
        assert listed is not None and listed.role == "listener" and listed.via == "discord"


@pytest.mark.parametrize("ticket_only", [True, False])
async def test_a_refund_made_by_another_process_reaches_the_stage_and_the_bridge(
    core: Core,
    dispatcher: Dispatcher,
    settings: Settings,
    clock: ManualClock,
    fake: FakeDiscord,
    server: Server,
    ticket_only: bool,
) -> None:
    """The Stripe webhook is handled by a web worker without Discord: its refund reaches
    the bot's process through the database they share (no event crosses between them).
    The refunded speaker leaves the bridged room and loses the Stage: moved out where
    Stagepass keeps the channel to ticket holders, else back in the audience."""
    async with bridged(
        core,
        dispatcher,
        settings,
        fake,
        server,
        mode=BridgeMode.LISTEN,
        ticket_only_stage=ticket_only,
        recheck_seconds=0.05,
    ) as w:
        guild, stage, bob, carol = server.guild, w.channel, server.bob, server.carol
        for member in (bob, carol):
            await fake.join_voice(guild, member, stage)
        await w.bot.answer(await fake.slash(guild, server.mo, "stage promote", user=bob))
        await w.until_seen(bob, "a speaker", role="speaker")
        await w.until_seen(carol, "a listener", role="listener")
        await w.bot.until(lambda: not guild.voice[bob.user.id].suppress, "bob on stage")

        await refund_elsewhere(settings, core, clock, f"discord:{guild.id}:{bob.user.id}")

        await w.bot.until(lambda: w.seen(bob) is None, "bob out of the room's list")
        assert not w.bridge.admits(bob.user.id)
        if ticket_only:
            await w.bot.until(lambda: guild.voice[bob.user.id].channel_id is None, "bob out")
            await w.bot.until(lambda: _told(fake, bob), "bob's DM")
            assert "listening needs a ticket for it" in _told(fake, bob)
        else:
            await w.bot.until(lambda: guild.voice[bob.user.id].suppress, "bob off the stage")
            assert guild.voice[bob.user.id].channel_id == stage.id
        assert w.seen(carol) is not None  # still a holder
        assert (await core.stage.state(1)).speakers == []
