"""Who may do what in a Matrix room, on a real Synapse: moderators by power level (not
only the host) run the stage and members below the level are refused; host rules read
power levels and how long someone has been in the room; a command in a room that is not
the bot's is refused; a message the bot cannot decrypt gets a notice and the next one
works; someone who joins an encrypted room later has the bot's room key before they speak.

Host rules here: moderators, or members of at least 7 days."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from nio import JoinResponse, RoomCreateResponse, RoomInviteResponse

from bot.clock import ManualClock
from bot.settings import Settings
from tests.matrix.conftest import MatrixWorld, body, content, register_member
from tests.matrix.synapse import Synapse
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"host_rules": ["moderators", "member_days:7"]})


def create(clock: ManualClock, title: str) -> str:
    """A free Space two days from the clock's today."""
    day = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%d")
    return f'!space create title:"{title}" starts:"{day} 18:00" tickets:3'


def is_notice(source: dict[str, object]) -> bool:
    return bool(content(source)["msgtype"] == "m.notice")


async def test_a_moderator_who_is_not_the_host_runs_the_stage(
    matrix: MatrixWorld, clock: ManualClock
) -> None:
    mx = matrix
    host, ann, ben, cat = (mx.people[n] for n in ("host", "ann", "ben", "cat"))
    await mx.set_power_level(ann.user_id, 50)  # MATRIX_MODERATOR_LEVEL's default
    await mx.set_power_level(ben.user_id, 49)

    reply = await host.command(mx.room_id, create(clock, "Open mic"))
    assert "Space #1 is announced" in body(reply), body(reply)
    mark = len(cat.messages)
    reply = await cat.command(mx.room_id, "!ticket buy 1")
    assert body(reply).startswith("You're in!"), body(reply)
    await cat.dm(mx.bot, "Your ticket for Open mic", after=mark)
    reply = await host.command(mx.room_id, "!space start 1 confirm:yes")
    assert body(reply) == "I've sent you the details in a direct message.", body(reply)

    for typed in (f"!stage promote {cat.user_id} space:1", f"!stage mute {cat.user_id} space:1"):
        refused = await ben.command(mx.room_id, typed)
        assert is_notice(refused)
        assert body(refused) == "Only the host, co-hosts and moderators can manage the stage."

    reply = await ann.command(mx.room_id, f"!stage promote {cat.user_id} space:1")
    assert body(reply) == f"{cat.user_id} is now a speaker.", body(reply)
    reply = await ann.command(mx.room_id, f"!stage mute {cat.user_id} space:1")
    assert not is_notice(reply) and "muted" in body(reply), body(reply)


@pytest.mark.parametrize("matrix", ["plain"], indirect=True)
async def test_host_rules_read_power_levels_and_time_in_the_room(
    matrix: MatrixWorld, clock: ManualClock
) -> None:
    mx = matrix
    ann, ben = mx.people["ann"], mx.people["ben"]
    clock.set(datetime.now(UTC))  # Synapse stamps everyone's join with today's date

    refused = await ben.command(mx.room_id, create(clock, "Too soon"))
    assert is_notice(refused)
    assert body(refused) == "Only moderators or members of at least 7 days can host Spaces here."

    await mx.set_power_level(ann.user_id, 50)
    reply = await ann.command(mx.room_id, create(clock, "Ann hosts"))
    assert "Space #1 is announced" in body(reply), body(reply)

    clock.advance(timedelta(days=8))
    reply = await ben.command(mx.room_id, create(clock, "Ben hosts"))
    assert "Space #2 is announced" in body(reply), body(reply)


@pytest.mark.parametrize("matrix", ["plain"], indirect=True)
async def test_a_command_in_a_room_that_is_not_the_bots_is_refused(matrix: MatrixWorld) -> None:
    mx = matrix
    host = mx.people["host"]
    made = await host.client.room_create(name="Elsewhere", invite=[mx.bot])
    assert isinstance(made, RoomCreateResponse), made
    # the bot joins only its announcement room; someone joined it here by hand
    joined = await mx.bot_client.join(made.room_id)
    assert isinstance(joined, JoinResponse), joined

    refused = await host.command(made.room_id, "!space list")
    assert is_notice(refused)
    assert body(refused) == (
        "I take commands in Stagepass test and in your direct messages with me, not in this room."
    )
    reply = await host.command(mx.room_id, "!space list")  # its own room still answers
    assert body(reply).startswith("No upcoming Spaces here.")


@pytest.mark.parametrize("matrix", ["encrypted"], indirect=True)
async def test_an_undecryptable_message_gets_a_notice_and_the_next_one_works(
    matrix: MatrixWorld,
) -> None:
    mx = matrix
    ann = mx.people["ann"]
    olm = ann.client.olm
    assert olm is not None
    # ann's device starts a room key it sends nobody (as a client that missed the bot's
    # device does): the bot gets the message and no key for it
    olm.create_outbound_group_session(mx.room_id)
    unshared = olm.outbound_group_sessions[mx.room_id]
    unshared.shared = True

    with structlog.testing.capture_logs() as logs:
        sent = await ann.say(mx.room_id, "!space list")
        notice = await ann.reply_to(sent)
    assert is_notice(notice)
    assert body(notice).startswith("I could not decrypt your message")
    assert "send it again" in body(notice)
    [entry] = [e for e in logs if e["event"] == "matrix: cannot decrypt a message"]
    assert entry["room"] == mx.room_id and entry["sender"] == ann.user_id
    assert entry["device"] == ann.client.device_id and entry["session"] == unshared.id
    assert entry["event_id"] == sent and entry["log_level"] == "warning"
    assert unshared.session_key not in repr(logs)  # no key material in the log

    # ann's client shares a new room key (as it does for a device it learns of): the next
    # command is read and answered; the sync loop went on
    ann.client.invalidate_outbound_session(mx.room_id)
    reply = await ann.command(mx.room_id, "!space list")
    assert body(reply).startswith("No upcoming Spaces here."), body(reply)


@pytest.mark.parametrize("matrix", ["encrypted"], indirect=True)
async def test_someone_who_joins_later_has_the_room_key_before_they_speak(
    matrix: MatrixWorld, synapse: Synapse, tmp_path: Path
) -> None:
    mx = matrix
    eve, _ = await register_member(synapse, "eve", tmp_path / "eve", secrets.token_hex(3))
    await eve.start()
    try:
        invited = await mx.people["host"].client.room_invite(mx.room_id, eve.user_id)
        assert isinstance(invited, RoomInviteResponse), invited
        bot = mx.bot_client
        assert bot.olm is not None

        def shared_with_eve() -> bool:
            session = bot.olm.outbound_group_sessions.get(mx.room_id) if bot.olm else None
            device = (eve.user_id, str(eve.client.device_id))
            return session is not None and session.shared and device in session.users_shared_with

        await eventually(shared_with_eve, what="the bot's room key shared with eve's device")
        reply = await eve.command(mx.room_id, "!space list")
        assert body(reply).startswith("No upcoming Spaces here."), body(reply)
    finally:
        await eve.stop()
