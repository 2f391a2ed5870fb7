"""The host's desk through the real HTTP app: the link `/space manage` sends opens it for
the host, co-hosts and moderators; it refuses a listener, an expired link, another
Space's link, and a replay once the rights behind it are gone; a refund goes through the
core's refund within the policy; CSV; `/space tickets` in chat."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from adapters.shell.chat import Chat
from bot.clock import ManualClock
from bot.core import Core
from bot.models import Hold, Identity
from bot.replies import Reply
from tests.fakes.payments import StubPayments


def desk_path(reply: Reply) -> str:
    """The path and query of the desk button in a reply."""
    url = next(b.url for b in reply.buttons if b.label == "Open your desk")
    assert url is not None
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def ok(chat: Chat, who: str, text: str) -> Reply:
    reply = await chat.say(who, text)
    assert not reply.error, reply.text
    return reply


async def create(chat: Chat, title: str, starts: str, options: str) -> int:
    reply = await ok(chat, "alice", f'/space create title:"{title}" starts:"{starts}" {options}')
    found = re.search(r"Space #(\d+)", reply.text)
    assert found, reply.text
    return int(found.group(1))


async def paid_space(chat: Chat, core: Core, payments: StubPayments) -> int:
    """Alice's paid Space #N (4 days ahead): bob and dave paid (50c fee each), carol holds
    a seat unpaid."""
    core.use_payments(payments)
    space_id = await create(chat, "Desk test", "2030-01-05 18:00", "tickets:10 price:5")
    clock = core.clock
    assert isinstance(clock, ManualClock)
    for buyer in ("bob", "dave"):
        clock.advance(timedelta(minutes=20))  # a sales curve with steps
        await ok(chat, buyer, f"/ticket buy {space_id}")
        hold = await _active_hold(core, space_id)
        await core.tickets.confirm(hold, fee_minor=50)
    await ok(chat, "carol", f"/ticket buy {space_id}")
    await core.bus.drain()
    return space_id


async def _active_hold(core: Core, space_id: int) -> str:
    from sqlmodel import select

    from bot.models import HoldStatus

    async with core.db.session() as session:
        hold = (
            await session.exec(
                select(Hold).where(Hold.space_id == space_id, Hold.status == HoldStatus.ACTIVE)
            )
        ).first()
    assert hold is not None
    return hold.id


async def test_the_host_sees_holders_totals_chart_and_links(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await paid_space(chat, core, StubPayments())
    page = await anon.get(desk_path(await ok(chat, "alice", f"/space manage {space_id}")))
    assert page.status_code == 200, page.text
    html = page.text
    rows = re.findall(r'<tr id="row-([a-z0-9]+)">(.*?)</tr>', html, re.S)
    found = [re.search(r'class="st [^"]+">([^<]+)<', r) for _, r in rows]
    statuses = sorted(m.group(1) for m in found if m is not None)
    assert statuses == ["paid", "paid", "pending hold"]
    assert html.count('name="ticket"') == 2  # a refund button per paid ticket, none for the hold
    assert "$10.00" in html and "$1.00" in html  # sales and the platform's cut
    assert '<dd id="host-total">$9.00</dd>' in html
    assert "Full refunds (the platform&#39;s cut included) until" in html
    assert "<svg" in html and "<path d=" in html
    public = core.settings.resolved_public_url
    assert f'<a id="public-link" href="{public}/spaces/{space_id}">' in html
    assert f'<a id="room-link" href="{public}/rooms/{space_id}#token=' in html
    csp = page.headers["content-security-policy"]
    assert "form-action 'self'" in csp and "script-src 'nonce-" in csp
    assert not re.search(r'src="(https?:)?//', html)  # nothing loaded from elsewhere
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_the_desk_charts_the_listeners_the_room_reported(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await paid_space(chat, core, StubPayments())
    path = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    quiet = (await anon.get(path)).text
    chart = quiet.split('<div id="listeners-chart">', 1)[1].split("</div>", 1)[0]
    assert "Nobody has listened yet" in chart and "<path" not in chart
    assert isinstance(core.clock, ManualClock)
    for count in (2, 7, 3):
        await core.host_desk.record_listeners(space_id, count)
        core.clock.advance(timedelta(minutes=5))
    assert [n for _, n in await core.host_desk.listeners(space_id)] == [2, 7, 3]
    html = (await anon.get(path)).text
    chart = html.split('<div id="listeners-chart">', 1)[1].split("</div>", 1)[0]
    assert f"Listeners in Space #{space_id}&#39;s room over time" in chart
    assert "<path d=" in chart and ">7</text>" in chart  # the peak is marked


async def test_refund_one_ticket_from_the_desk(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    path = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    token = path.split("token=")[1]
    bob = (await core.tickets.tickets_of((await _identity(core, "bob")).id or 0))[0]

    done = await anon.post(
        f"/spaces/{space_id}/manage/refund", data={"token": token, "ticket": bob.id}
    )
    assert done.status_code == 303
    page = await anon.get(done.headers["location"])
    assert f"Ticket {bob.id} is refunded." in page.text
    row = re.search(rf'<tr id="row-{bob.id}">(.*?)</tr>', page.text, re.S)
    assert row and ">refunded<" in row.group(1) and 'name="ticket"' not in row.group(1)
    assert payments.refunded == [bob.id]
    assert (await core.tickets.get(bob.id)).status.value == "refunded"
    await core.bus.drain()
    assert any("refund" in dm.lower() for dm in chat.dms("bob"))

    again = await anon.post(
        f"/spaces/{space_id}/manage/refund", data={"token": token, "ticket": bob.id}
    )
    assert again.status_code == 409 and "already refunded" in again.text
    assert payments.refunded == [bob.id]  # once


async def test_refunds_close_at_the_policy_cutoff(
    chat: Chat, core: Core, anon: httpx.AsyncClient, clock: ManualClock
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    dave = (await core.tickets.tickets_of((await _identity(core, "dave")).id or 0))[0]
    clock.set((await core.spaces.get(space_id)).starts_at - timedelta(hours=2))
    token = desk_path(await ok(chat, "alice", f"/space manage {space_id}")).split("token=")[1]
    answer = await anon.post(
        f"/spaces/{space_id}/manage/refund", data={"token": token, "ticket": dave.id}
    )
    assert answer.status_code == 409
    assert "the refund policy allows none after" in answer.text
    assert payments.refunded == []


async def test_csv_export_has_every_row(chat: Chat, core: Core, anon: httpx.AsyncClient) -> None:
    space_id = await paid_space(chat, core, StubPayments())
    path = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    token = path.split("token=")[1]
    answer = await anon.get(f"/spaces/{space_id}/manage.csv", params={"token": token})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted((r["holder"], r["status"], r["amount_minor"]) for r in rows) == [
        ("bob", "paid", "500"),
        ("carol", "pending hold", "500"),
        ("dave", "paid", "500"),
    ]


async def _identity(core: Core, user: str) -> Identity:
    found = await core.identities.by_key(f"shell:local:{user}")
    assert found is not None
    return found


async def test_the_link_refuses_a_listener_expired_another_space_and_a_replay(
    chat: Chat, core: Core, anon: httpx.AsyncClient, clock: ManualClock
) -> None:
    space_id = await paid_space(chat, core, StubPayments())
    other_id = await create(chat, "Other", "2030-01-06 18:00", "tickets:3")

    listener = await chat.say("bob", f"/space manage {space_id}")
    assert listener.error and "Only the host, co-hosts and moderators" in listener.text
    assert (await chat.say("bob", f"/space tickets {space_id}")).error

    host_path = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    token = host_path.split("token=")[1]
    moved = await anon.get(f"/spaces/{other_id}/manage", params={"token": token})
    assert moved.status_code == 401 and "for another Space" in moved.text
    assert (await anon.get(f"/spaces/{space_id}/manage")).status_code == 401
    forged = await anon.get(f"/spaces/{space_id}/manage", params={"token": token[:-4] + "AAAA"})
    assert forged.status_code == 401

    # a room ticket is not a desk link, whoever holds it
    bob = (await core.tickets.tickets_of((await _identity(core, "bob")).id or 0))[0]
    room = core.tickets.token_for(bob, await core.spaces.get(space_id))
    assert (await anon.get(f"/spaces/{space_id}/manage", params={"token": room})).status_code == 401

    await ok(chat, "alice", f"/space cohost add {space_id} @erin")
    cohost_path = desk_path(await ok(chat, "erin", f"/space manage {space_id}"))
    opened = await anon.get(cohost_path)
    assert opened.status_code == 200 and 'name="ticket"' not in opened.text  # co-hosts see
    assert "Only the host refunds." in opened.text
    cohost_token = cohost_path.split("token=")[1]
    refused = await anon.post(
        f"/spaces/{space_id}/manage/refund", data={"token": cohost_token, "ticket": bob.id}
    )
    assert refused.status_code == 403 and (await core.tickets.get(bob.id)).status.value == "valid"

    await ok(chat, "alice", f"/space cohost remove {space_id} @erin")
    replay = await anon.get(cohost_path)
    assert replay.status_code == 403 and "rights to this Space" in replay.text
    assert (await anon.get(host_path)).status_code == 200

    clock.advance(timedelta(hours=1, seconds=1))
    expired = await anon.get(host_path)
    assert expired.status_code == 401 and "expired" in expired.text


async def test_a_moderator_opens_the_desk_and_sees_it_in_chat(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await paid_space(chat, core, StubPayments())
    chat.person("mo", moderator=True)
    page = await anon.get(desk_path(await ok(chat, "mo", f"/space manage {space_id}")))
    assert page.status_code == 200 and "Only the host refunds." in page.text

    listing = await ok(chat, "mo", f"/space tickets {space_id}")
    lines = listing.text.splitlines()
    assert lines[0].startswith("2 ticket(s), $10.00 sold, platform cut $1.00")
    assert "1 seat(s) held, awaiting payment." in lines[0]
    assert any(" — carol — pending hold — $5.00 for 1 seat(s), until " in line for line in lines)
    assert sum(" — paid — $5.00" in line for line in lines) == 2
    assert lines[-1] == "Page 1 of 1"


async def test_space_tickets_pages_stay_within_discord_limits(chat: Chat, core: Core) -> None:
    space_id = await create(chat, "Big", "2030-01-05 18:00", "tickets:80")
    for i in range(40):
        await ok(chat, f"listener-with-a-rather-long-name-{i:02d}", f"/ticket buy {space_id}")
    first = await ok(chat, "alice", f"/space tickets {space_id}")
    assert len(first.text) <= 2000
    assert first.text.splitlines()[-1] == (f"Page 1 of 3 — next: /space tickets {space_id} page:2")
    last = await ok(chat, "alice", f"/space tickets {space_id} page:9")
    assert last.text.splitlines()[-1] == "Page 3 of 3"
    assert len(last.text.splitlines()) == 1 + 10 + 1


async def test_a_free_ticket_is_voided_and_bad_addresses_get_a_page(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await create(chat, "Free", "2030-01-05 18:00", "tickets:3")
    await ok(chat, "bob", f"/ticket buy {space_id}")
    bob = (await core.tickets.tickets_of((await _identity(core, "bob")).id or 0))[0]
    token = desk_path(await ok(chat, "alice", f"/space manage {space_id}")).split("token=")[1]
    done = await anon.post(
        f"/spaces/{space_id}/manage/refund", data={"token": token, "ticket": bob.id}
    )
    page = await anon.get(done.headers["location"])
    assert f"Ticket {bob.id} is voided." in page.text
    assert (await core.tickets.get(bob.id)).status.value == "revoked"

    nonsense = await anon.get("/spaces/abc/manage", params={"token": token})
    assert nonsense.status_code == 404 and "There is no Space #abc." in nonsense.text
    empty = await anon.post(f"/spaces/{space_id}/manage/refund", data={"token": token})
    assert empty.status_code == 400 and "Choose a ticket to refund." in empty.text


async def test_a_form_that_is_not_the_desks_gets_a_page(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await create(chat, "Forms", "2030-01-05 18:00", "tickets:3")
    crowded = await anon.post(
        f"/spaces/{space_id}/manage/refund",
        content="&".join(f"f{i}=x" for i in range(20)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert crowded.status_code == 401 and "needs the link the bot sent you" in crowded.text


async def test_the_desk_shows_the_waitlist_in_order(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    core.use_payments(StubPayments())
    space_id = await create(chat, "Full", "2030-01-05 18:00", "tickets:1 price:5")
    await ok(chat, "bob", f"/ticket buy {space_id}")
    for person in ("carol", "dave"):
        await ok(chat, person, f"/ticket waitlist {space_id}")
    page = await anon.get(desk_path(await ok(chat, "alice", f"/space manage {space_id}")))
    assert page.status_code == 200, page.text
    assert '<p class="host" id="waitlist-count">2 waiting.' in page.text
    line = re.search(r'<ol id="waitlist">(.*?)</ol>', page.text, re.S)
    assert line is not None
    assert re.findall(r"<li>([^<]+)</li>", line.group(1)) == ["carol", "dave"]
