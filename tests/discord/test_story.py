"""The whole free-Space story through the fake Discord, as people would live it."""

from __future__ import annotations

import re
import time

from sqlmodel import select

from bot.core import Core
from bot.events import DirectMessage
from bot.models import Reminder, SpaceStatus
from bot.services.stage import SeatRole
from tests.discord.conftest import Bot, Server
from tests.discord.fake_discord import FakeDiscord, Member
from tests.discord.fake_discord import permissions as P

G = r"\d+"


def key(server: Server, member: Member) -> str:
    return f"discord:{server.guild.id}:{member.user.id}"


async def test_host_creates_listener_buys_reminds_and_the_stage_runs(
    bot: Bot, fake: FakeDiscord, server: Server, core: Core
) -> None:
    guild, alice, bob, mo = server.guild, server.host, server.bob, server.mo

    # the host creates a Space with a slash command; options are typed, times in her zone
    began = time.perf_counter()
    created = await fake.slash(
        guild,
        alice,
        "space create",
        title="Ask me anything",
        starts="tomorrow 18:00",
        tickets=10,
        duration="90",
    )
    reply = await bot.answer(created)
    print(f"\ndiscord: the first command answered in {(time.perf_counter() - began) * 1000:.0f} ms")
    assert "Space #1 is announced" in reply.text() and reply.ephemeral  # the host's echo
    assert created.callback_types == [4]  # answered at once, well within 3 s

    # the announcement: embed with a Discord timestamp and the three persistent buttons
    [announcement] = fake.channel_messages(server.announce)
    space = await core.spaces.get(1)
    unix = int(space.starts_at.timestamp())
    assert f"<t:{unix}:F>" in announcement.text()
    assert "Tickets left: 10 of 10" in announcement.text()
    assert announcement.custom_ids() == ["sp:/ticket buy 1", "sp:/remind on 1", "sp-tip:1"]
    # the public page's call to action opens it: Discord's message link
    [link] = await core.announcements.of(1)
    assert (link.platform, link.url) == (
        "Discord",
        f"https://discord.com/channels/{guild.id}/{server.announce.id}/{announcement.id}",
    )

    # a Stage scheduled event in the Stage channel; no role yet (it comes with a sale),
    # and the Stage stays open until a Space is live on it
    [event] = guild.events.values()
    assert (event.entity_type, event.channel_id, event.status) == (1, server.stage.id, 1)
    assert event.name == "Ask me anything"
    assert not [r for r in guild.roles.values() if r.name.startswith("🎟")]
    assert server.stage.overwrites == {}

    # autocomplete finds the Space by title
    choices = await fake.autocomplete(guild, bob, "ticket buy", "space", "ask")
    assert choices == [{"name": choices[0]["name"], "value": 1}]
    assert choices[0]["name"].startswith("#1 Ask me anything")

    # a listener clicks the button: ticket, DM with the join link, role
    bought = await fake.click(guild, bob, announcement, "Get ticket")
    answer = await bot.answer(bought)
    assert answer.ephemeral and "You're in!" in answer.text()
    [dm] = fake.dms(bob)
    assert "Your ticket for Ask me anything" in dm.text()
    [[join, manage]] = [row["components"] for row in dm.components]
    assert join["label"] == "Join the room"
    assert re.fullmatch(r"http://stagepass\.test/rooms/1#token=\S+", join["url"])
    assert manage["label"] == "Manage my ticket"
    assert re.fullmatch(r"http://stagepass\.test/tickets/[0-9a-f]+\?token=\S+", manage["url"])
    [ticket_role] = [r for r in guild.roles.values() if r.name == "🎟 #1 Ask me anything"]
    assert ticket_role.id in bob.roles and ticket_role.id in alice.roles  # the host has it
    assert fake.calls_to("PUT", f"/guilds/{G}/members/{bob.user.id}/roles/{ticket_role.id}")
    assert "Tickets left: 9 of 10" in announcement.text()  # edited in place

    # Remind me sets a reminder; the scheduler's delivery arrives as a core DM
    reminded = await bot.answer(await fake.click(guild, bob, announcement, "Remind me"))
    assert reminded.ephemeral and "I'll remind you" in reminded.text()
    async with core.db.session() as session:
        assert len(list(await session.exec(select(Reminder).where(Reminder.space_id == 1)))) == 1
    core.bus.publish(
        DirectMessage(
            identity_key=key(server, bob),
            text="Ask me anything starts in 15 minutes.",
            links=(("Join the room", "http://stagepass.test/rooms/1"),),
        )
    )
    await bot.settle()
    reminder = fake.dms(bob)[-1]
    assert reminder.text() == "Ask me anything starts in 15 minutes."
    assert fake.calls_to("POST", rf"/channels/{reminder.channel_id}/messages")
    assert reminder.channel_id == dm.channel_id  # the DM channel

    # the host starts it: the Stage instance opens, linked to the event
    started = await bot.answer(await fake.slash(guild, alice, "space start", space=1, confirm=True))
    assert "is live" in started.text()
    [stage_call] = fake.calls_to("POST", "/stage-instances")
    assert int(stage_call.body["channel_id"]) == server.stage.id
    assert int(stage_call.body["guild_scheduled_event_id"]) == event.id
    assert server.stage.id in guild.stages and event.status == 2
    assert "Live now" in announcement.text()
    # "live" is told once, in the announcement channel; the host's answer is hers alone
    assert started.ephemeral
    [_, live] = fake.channel_messages(server.announce)
    assert live.text() == (
        f"🔴 **Ask me anything** (Space #1) is live now on <#{server.stage.id}>. Ticket "
        "holders can also join with the link in their ticket."
    )
    # only ticket holders may join the Stage while it is live
    overwrites = server.stage.overwrites
    assert overwrites[guild.id].deny & P.CONNECT
    assert overwrites[ticket_role.id].allow & P.CONNECT

    # the host joins the Stage and is on it at once; listeners join suppressed
    await fake.join_voice(guild, alice, server.stage)
    await bot.until(lambda: not guild.voice[alice.user.id].suppress, "the host on stage")

    # Discord's request-to-speak raises the hand in Stagepass
    await fake.join_voice(guild, bob, server.stage)
    await fake.request_to_speak(guild, bob)
    await bot.settle()
    state = await core.stage.state(1)
    assert [s.identity.display_name for s in state.queue] == ["bob"]

    # a moderator promotes: suppress lifted on the Stage, bob is a Stagepass speaker
    promoted = await bot.answer(await fake.slash(guild, mo, "stage promote", user=bob))
    assert "bob is now a speaker" in promoted.text() and promoted.ephemeral
    [_, _, speaker] = fake.channel_messages(server.announce)  # posted once, there
    assert speaker.text() == f"🎙️ <@{bob.user.id}> is now a speaker in **Ask me anything**."
    [lift] = fake.calls_to("PATCH", f"/guilds/{G}/voice-states/{bob.user.id}")
    assert lift.body["suppress"] is False
    assert guild.voice[bob.user.id].suppress is False
    state = await core.stage.state(1)
    assert [(s.identity.display_name, s.seat.role) for s in state.speakers] == [
        ("bob", SeatRole.SPEAKER)
    ]
    assert any("You are now a speaker" in m.text() for m in fake.dms(bob))

    # and demotes
    demoted = await bot.answer(await fake.slash(guild, mo, "stage demote", user=bob))
    assert "bob is a listener again" in demoted.text()
    lifts = fake.calls_to("PATCH", f"/guilds/{G}/voice-states/{bob.user.id}")
    assert lifts[-1].body["suppress"] is True and guild.voice[bob.user.id].suppress is True
    assert (await core.stage.state(1)).speakers == []

    # the end: Stage closed, event completed, role gone
    await bot.answer(await fake.slash(guild, alice, "space end", space=1))
    assert (await core.spaces.get(1)).status == SpaceStatus.ENDED
    assert server.stage.id not in guild.stages and event.status == 3
    assert ticket_role.id not in guild.roles and ticket_role.id not in bob.roles
    assert guild.id not in server.stage.overwrites  # open again, as before the Space
    assert announcement.components == [] and "Ended" in announcement.text()
    assert fake.unknown == []
