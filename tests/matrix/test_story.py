"""The whole story in a Matrix room on a real Synapse, plain and end-to-end encrypted:
the host announces a paid Space, three people buy until it is sold out, a fourth is
refused, the host starts it, a holder asks to speak and is promoted, and a cancel
refunds every ticket. Every step is a message a real client typed and read."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.matrix.conftest import MatrixWorld, Member, body, content

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CREATE = '!space create title:"Jazz night" starts:"2030-01-03 18:00" tickets:3 price:15'


def link(source: dict[str, object], label: str) -> str:
    """The URL after `label: ` in a message's plain body."""
    for line in body(source).splitlines():
        if line.startswith(label + ": "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no {label!r} link in {body(source)!r}")


async def onboard(mx: MatrixWorld, host: Member) -> None:
    """The host connects Stripe: the link comes by DM, the thread says so."""
    reply = await host.command(mx.room_id, "!payouts connect")
    assert body(reply) == "I've sent you the details in a direct message."
    dm = await host.dm(mx.bot, "http")
    url = next(line.split(": ", 1)[1] for line in body(dm).splitlines() if "http" in line)
    async with httpx.AsyncClient() as browser:
        assert (await browser.post(url)).status_code == 303
    await mx.world.pump()


async def buy_and_pay(mx: MatrixWorld, who: Member, space_id: int) -> None:
    mark = len(who.messages)
    reply = await who.command(mx.room_id, f"!ticket buy {space_id}")
    assert body(reply) == "I've sent you the details in a direct message.", body(reply)
    held = await who.dm(mx.bot, "Pay now: ", after=mark)
    assert "held for you until" in body(held)
    session_id = link(held, "Pay now").rsplit("/", 1)[1]
    assert mx.world.fake is not None
    await mx.world.fake.complete_session(session_id)
    await mx.world.pump()
    await mx.settle()
    ticket = await who.dm(mx.bot, "Your ticket for Jazz night", after=mark)
    assert "/rooms/1#token=" in body(ticket)  # the join link opens the web room


async def test_announce_sell_out_start_promote_and_cancel(matrix: MatrixWorld) -> None:
    mx = matrix
    host, ann, ben, cat, dan = (mx.people[n] for n in ("host", "ann", "ben", "cat", "dan"))

    started = time.perf_counter()
    reply = await host.command(mx.room_id, "!space list")
    first = time.perf_counter() - started
    print(
        f"\nmatrix ({'encrypted' if mx.encrypted else 'plain'} room): the first command "
        f"answered in {first * 1000:.0f} ms (typed by a client, read back through Synapse)"
    )
    assert body(reply).startswith("No upcoming Spaces here. Host one with !space create.")

    await onboard(mx, host)
    reply = await host.command(mx.room_id, CREATE)
    assert "Space #1 is announced" in body(reply), body(reply)
    card = await mx.card_shows(ann, 1, "Tickets left: 3 of 3")
    assert card["body"].startswith("#1 Jazz night")
    assert "Buy ticket ($15.00): !ticket buy 1" in card["body"]
    assert "<h3>#1 Jazz night</h3>" in card["formatted_body"]
    assert "<code>!ticket buy 1</code>" in card["formatted_body"]

    for buyer in (ann, ben, cat):
        await buy_and_pay(mx, buyer, 1)
    await mx.card_shows(dan, 1, "Tickets left: Sold out")

    refused = await dan.command(mx.room_id, "!ticket buy 1")
    assert content(refused)["msgtype"] == "m.notice"
    assert body(refused).startswith("Space #1 is sold out.")

    # a mistyped command is a notice in its thread too
    typo = await dan.command(mx.room_id, "!space lst")
    assert content(typo)["msgtype"] == "m.notice" and "!space list" in body(typo)

    mark = len(host.messages)
    reply = await host.command(mx.room_id, "!space start 1 confirm:yes")
    assert body(reply) == "I've sent you the details in a direct message."
    live = await host.dm(mx.bot, "Space #1 is live.", after=mark)
    assert "Open the room: http://" in body(live)
    await ann.wait_for(lambda _, s: "#1 Jazz night is live now" in body(s))

    reply = await ann.command(mx.room_id, "!stage request space:1")
    assert body(reply) == "You asked to speak; a moderator will see your raised hand."
    reply = await host.command(mx.room_id, f"!stage promote {ann.user_id} space:1")
    assert body(reply) == f"{ann.user_id} is now a speaker.", body(reply)
    await ben.wait_for(lambda _, s: f"{ann.user_id} is now a speaker in #1" in body(s))

    reply = await host.command(mx.room_id, '!space cancel 1 reason:"Storm" confirm:yes')
    assert "Space #1 is cancelled" in body(reply), body(reply)
    assert "3 ticket(s) refunded or voided" in body(reply)
    await mx.world.pump()
    await mx.settle()
    assert mx.world.fake is not None
    assert len(mx.world.fake.refunds) == 3
    for holder in (ann, ben, cat):
        await holder.dm(mx.bot, "refund")
    await mx.card_shows(dan, 1, "Status: cancelled (Storm)")
    # the one-time password login kept its token where only the bot's user reads it
    saved = mx.world.core.settings.data_dir / "matrix" / "credentials.json"
    assert saved.stat().st_mode & 0o777 == 0o600

    timings = mx.adapter.commands.timings if mx.adapter.commands else []
    print(f"matrix: {len(timings)} commands, slowest {max(timings) * 1000:.0f} ms in the adapter")
