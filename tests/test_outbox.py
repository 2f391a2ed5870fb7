"""The outbox: a DM is delivered at least once, through a platform's bad minute and a
crash, and never sent twice once its adapter has it."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlmodel import select

from adapters.shell.chat import Chat
from bot.actors import Actor
from bot.clock import ManualClock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.db import Database
from bot.events import DirectMessage
from bot.models import OutboxMessage, OutboxStatus, Platform
from bot.notices import EventMessenger
from bot.settings import Settings

LATER = timedelta(hours=3)  # past every backoff delay


class Flaky:
    """A platform adapter whose sends fail (`fail_next` times), or are refused for good,
    before they go through: it answers the outbox as the real adapters do."""

    def __init__(self, core: Core, platform: Platform, *, fail_next: int = 0) -> None:
        self.outbox = core.outbox
        self.platform = platform
        self.fail_next = fail_next
        self.refuse = False
        self.tries: list[DirectMessage] = []
        self.delivered: list[DirectMessage] = []
        core.bus.subscribe(DirectMessage, self.on_direct_message)
        core.outbox.delivers(platform)

    async def on_direct_message(self, message: DirectMessage) -> None:
        if not message.identity_key.startswith(f"{self.platform.value}:"):
            return
        self.tries.append(message)
        if self.refuse:
            await self.outbox.refused(message.id, "cannot_dm_bot")
        elif self.fail_next:
            self.fail_next -= 1
            await self.outbox.failed(message.id, "503 Service Unavailable")
        else:
            self.delivered.append(message)
            await self.outbox.sent(message.id)


async def rows(core: Core) -> list[OutboxMessage]:
    async with core.db.session() as session:
        return list((await session.exec(select(OutboxMessage).order_by("id"))).all())


async def sweep(core: Core) -> int:
    published = await core.outbox.sweep()
    await core.bus.drain()
    return published


async def buy_ticket(chat: Chat) -> None:
    created = await chat.say(
        "alice", '/space create title:"Kept" starts:"tomorrow 18:00" tickets:3'
    )
    assert not created.error, created.text
    bought = await chat.say("bob", "/ticket buy 1")
    assert not bought.error, bought.text


async def test_a_delivered_dm_is_not_sent_twice(chat: Chat, core: Core, clock: ManualClock) -> None:
    await buy_ticket(chat)
    [dm] = chat.dms("bob")
    assert "Your ticket for Kept" in dm and "[Join the room]" in dm
    [row] = await rows(core)
    assert (row.status, row.attempts, row.sent_at) == (OutboxStatus.SENT, 1, clock.now())
    clock.advance(LATER)
    assert await sweep(core) == 0
    assert chat.dms("bob") == [dm]


async def test_a_transient_failure_is_delivered_by_the_sweep(
    core: Core, clock: ManualClock
) -> None:
    slack = Flaky(core, Platform.SLACK, fail_next=1)
    await core.outbox.send("slack:T1:U1", "Your ticket", (("Join the room", "http://x/1"),))
    await core.bus.drain()
    assert slack.delivered == []
    [row] = await rows(core)
    assert (row.status, row.last_error) == (OutboxStatus.PENDING, "503 Service Unavailable")

    assert await sweep(core) == 0  # not due yet: backoff
    clock.advance(core.outbox.delay(1))
    assert await sweep(core) == 1
    [message] = slack.delivered
    assert message.text == "Your ticket" and message.links == (("Join the room", "http://x/1"),)
    assert message.id == row.id
    [row] = await rows(core)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    clock.advance(LATER)
    assert await sweep(core) == 0 and len(slack.tries) == 2


async def test_failures_back_off_and_are_given_up_after_the_last_attempt(
    core: Core, clock: ManualClock
) -> None:
    slack = Flaky(core, Platform.SLACK, fail_next=1000)
    message_id = await core.outbox.send("slack:T1:U1", "Never arrives")
    await core.bus.drain()
    delays = []
    with structlog.testing.capture_logs() as logs:
        for attempt in range(2, core.outbox.max_attempts + 1):
            [row] = await rows(core)
            delays.append(row.next_attempt_at - clock.now())
            clock.set(row.next_attempt_at)
            assert await sweep(core) == 1, attempt
    assert delays == [core.outbox.delay(n) for n in range(1, core.outbox.max_attempts)]
    assert delays[0] < delays[1] < delays[-1] == core.outbox.max_delay
    [row] = await rows(core)
    assert (row.status, row.attempts) == (OutboxStatus.GAVE_UP, core.outbox.max_attempts)
    assert len(slack.tries) == core.outbox.max_attempts
    [given_up] = [e for e in logs if e["event"] == "direct message given up"]
    assert given_up["log_level"] == "error"
    assert given_up["outbox_id"] == message_id and given_up["identity_key"] == "slack:T1:U1"
    assert given_up["last_error"] == "503 Service Unavailable"
    clock.advance(LATER)
    assert await sweep(core) == 0


async def test_a_dm_nobody_answers_is_given_up_too(core: Core, clock: ManualClock) -> None:
    core.outbox.delivers(Platform.DISCORD)  # registered, but this "adapter" never answers
    await core.outbox.send("discord:1:2", "Into the void")
    for _ in range(core.outbox.max_attempts):
        clock.advance(LATER)
        await sweep(core)
    [row] = await rows(core)
    assert (row.status, row.attempts) == (OutboxStatus.GAVE_UP, core.outbox.max_attempts)


async def test_a_permanent_refusal_is_not_retried(core: Core, clock: ManualClock) -> None:
    slack = Flaky(core, Platform.SLACK)
    slack.refuse = True
    await core.outbox.send("slack:T1:U1", "Closed door")
    await core.bus.drain()
    [row] = await rows(core)
    assert (row.status, row.last_error, row.sent_at) == (
        OutboxStatus.REFUSED,
        "cannot_dm_bot",
        None,
    )
    clock.advance(LATER)
    assert await sweep(core) == 0 and len(slack.tries) == 1


async def test_the_sweep_leaves_other_platforms_rows_alone(
    chat: Chat, core: Core, clock: ManualClock
) -> None:
    """This process delivers shell DMs only: a Discord DM waits for a process that has the
    Discord adapter, untouched (no attempt spent on a bus nobody listens to)."""
    heard: list[DirectMessage] = []

    async def listen(message: DirectMessage) -> None:
        heard.append(message)

    core.bus.subscribe(DirectMessage, listen)
    await core.outbox.send("discord:1:2", "For Discord")
    await core.bus.drain()
    clock.advance(LATER)
    assert core.outbox.platforms == {Platform.SHELL}
    assert await sweep(core) == 0
    assert [m.text for m in heard] == ["For Discord"]  # the first attempt only
    [row] = await rows(core)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)

    discord = Flaky(core, Platform.DISCORD)  # a process with the Discord adapter
    assert await sweep(core) == 1
    assert [m.text for m in discord.delivered] == ["For Discord"]


async def test_dms_a_crash_left_unsent_are_delivered_after_a_restart(
    settings: Settings, sqlite_db: Database, clock: ManualClock
) -> None:
    # the first process commits the ticket and keeps the DM, then dies before any adapter
    # delivers it (no shell adapter subscribed: nothing takes it)
    first = Core.build(settings, db=sqlite_db, clock=clock)
    EventMessenger(first)
    dispatcher = Dispatcher(first)

    def actor(name: str) -> Actor:
        return Actor(Platform.SHELL, "local", name, name)

    for name, command in [
        ("alice", '/space create title:"Crash" starts:"tomorrow 18:00" tickets:3'),
        ("bob", "/ticket buy 1"),
    ]:
        reply = await dispatcher.handle(actor(name), command)
        assert not reply.error, reply.text
    await first.bus.drain()
    [row] = await rows(first)
    assert row.status == OutboxStatus.PENDING and row.identity_key == "shell:local:bob"
    await first.tickets.claims.close()
    await first.bus.close()

    # a new process on the same database: its start-up sweep delivers it, once
    db = Database(sqlite_db.url)
    second = Core.build(settings, db=db, clock=clock)
    try:
        EventMessenger(second)
        chat = Chat(second, Dispatcher(second))
        clock.advance(second.outbox.delay(1))
        assert await sweep(second) == 1
        [dm] = chat.dms("bob")
        assert "Your ticket for Crash" in dm and "#token=" in dm
        [row] = await rows(second)
        assert row.status == OutboxStatus.SENT
        clock.advance(LATER)
        assert await sweep(second) == 0
        assert len(chat.dms("bob")) == 1
    finally:
        await second.tickets.claims.close()
        await second.bus.close()
        await db.dispose()


async def test_dms_without_an_outbox_row_are_delivered_as_before(chat: Chat, core: Core) -> None:
    """A DirectMessage published straight on the bus (no id) still reaches its person."""
    core.bus.publish(DirectMessage(identity_key=f"{chat.community_id}:bob", text="Hello"))
    await core.bus.drain()
    assert chat.dms("bob") == ["Hello"]
    assert await rows(core) == []
