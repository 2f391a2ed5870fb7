"""Manage my ticket through the real HTTP app (issue 15 item 3, issue 16 item 5): the link
in the ticket DM opens the holder's page — the ticket, the Space's time, add to calendar,
the room link while live, Refund within the policy, replays in the window — and refuses
another person's ticket, an expired link, a room token, and a refunded ticket's actions."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from adapters.shell.chat import Chat
from audio.recordings import RecordingStore, StoreRecordings
from bot.clock import ManualClock
from bot.core import Core
from bot.models import Ticket, TicketStatus
from bot.services.spaces import SpaceChanges
from tests.fakes.payments import StubPayments
from tests.http.test_desk import create, desk_path, ok, paid_space


def manage_path(dm: str) -> str:
    """The path and query of the "Manage my ticket" link in a ticket DM."""
    found = re.search(r"\[Manage my ticket\] (\S+)", dm)
    assert found, dm
    parts = urlsplit(found.group(1))
    return f"{parts.path}?{parts.query}"


def ticket_dm(chat: Chat, who: str) -> str:
    [dm] = [m for m in chat.dms(who) if m.startswith("Your ticket for")]
    return dm


async def test_the_holder_sees_the_ticket_and_refunds_it_once(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    path = manage_path(ticket_dm(chat, "bob"))
    ticket_id = path.split("/")[2].split("?")[0]

    page = await anon.get(path)
    assert page.status_code == 200, page.text
    html = page.text
    assert f'<code id="ticket-id">{ticket_id}</code>' in html
    assert '<dd id="ticket-status" class="st-valid">valid</dd>' in html
    assert '<time id="starts" datetime="2030-01-05T18:00:00Z" data-local>' in html
    assert f'href="/spaces/{space_id}/calendar.ics"' in html and "calendar.google.com" in html
    assert 'id="join"' not in html  # not live yet: no room link
    assert 'id="refund"' in html and "Refunds in full until" in html
    csp = page.headers["content-security-policy"]
    assert "form-action 'self'" in csp and page.headers["referrer-policy"] == "no-referrer"

    token = path.split("token=")[1]
    done = await anon.post(f"/tickets/{ticket_id}/refund", data={"token": token})
    assert done.status_code == 303
    assert (await core.tickets.get(ticket_id)).status == TicketStatus.REFUNDED
    assert payments.refunded == [ticket_id]
    after = await anon.get(done.headers["location"])
    assert f"Ticket {ticket_id} is refunded." in after.text
    assert 'id="refund"' not in after.text and 'id="closed"' in after.text

    # a refunded ticket's actions are refused; nothing is refunded twice
    again = await anon.post(f"/tickets/{ticket_id}/refund", data={"token": token})
    assert again.status_code == 409 and "was refunded" in again.text
    assert payments.refunded == [ticket_id]


async def test_the_link_refuses_others_expired_links_and_room_tokens(
    chat: Chat, core: Core, anon: httpx.AsyncClient, clock: ManualClock
) -> None:
    await paid_space(chat, core, StubPayments())
    bob = manage_path(ticket_dm(chat, "bob"))
    dave = manage_path(ticket_dm(chat, "dave"))
    bob_ticket, bob_token = bob.split("/")[2].split("?token=")
    dave_ticket = dave.split("/")[2].split("?")[0]

    other = await anon.get(f"/tickets/{dave_ticket}?token={bob_token}")
    assert other.status_code == 403 and "This link is for another ticket." in other.text
    refund = await anon.post(f"/tickets/{dave_ticket}/refund", data={"token": bob_token})
    assert refund.status_code == 403
    assert (await core.tickets.get(dave_ticket)).status == TicketStatus.VALID

    room_token = ticket_dm(chat, "bob").split("#token=")[1].split()[0]
    as_room = await anon.get(f"/tickets/{bob_ticket}?token={room_token}")
    assert as_room.status_code == 401 and "not valid here" in as_room.text
    assert (await anon.get(f"/tickets/{bob_ticket}")).status_code == 401
    forged = await anon.get(f"/tickets/{bob_ticket}?token={bob_token[:-4]}AAAA")
    assert forged.status_code == 401

    clock.advance(timedelta(hours=24, minutes=1))
    expired = await anon.get(bob)
    assert expired.status_code == 401 and "expired" in expired.text
    assert "/ticket show" in expired.text  # where a fresh link comes from
    fresh = await ok(chat, "bob", "/ticket show")
    [manage] = [b for b in fresh.buttons if b.label.startswith("Manage")]
    assert manage.url is not None
    parts = urlsplit(manage.url)
    assert (await anon.get(f"{parts.path}?{parts.query}")).status_code == 200


async def test_past_the_cutoff_the_page_says_ask_the_host(
    chat: Chat, core: Core, anon: httpx.AsyncClient, clock: ManualClock
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    clock.set(clock.now().replace(year=2030, month=1, day=5, hour=1))  # < 24 h before
    path = manage_path(ticket_dm(chat, "bob")).split("?")[0]
    fresh = await ok(chat, "bob", "/ticket show")
    url = next(b.url for b in fresh.buttons if b.label.startswith("Manage"))
    assert url is not None
    token = url.split("token=")[1]
    page = await anon.get(f"{path}?token={token}")
    assert 'id="refund"' not in page.text
    assert "Refunds closed at" in page.text and "ask the host" in page.text
    refused = await anon.post(f"{path}/refund", data={"token": token})
    assert refused.status_code == 409
    assert f"Refunds for Space #{space_id} closed at Fri 4 Jan 2030, 18:00 UTC; ask the host." in (
        refused.text
    )
    assert payments.refunded == []


async def test_room_link_while_live_and_replays_in_the_window(
    chat: Chat, core: Core, anon: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    store = RecordingStore(tmp_path)
    core.replays.use_store(StoreRecordings(store))
    space_id = await create(chat, "Replayable", "in 2 hours", "tickets:5")
    await ok(chat, "bob", f"/ticket buy {space_id}")
    await ok(chat, "carol", f"/ticket buy {space_id}")
    await core.bus.drain()
    path = manage_path(ticket_dm(chat, "bob"))
    ticket_id = path.split("/")[2].split("?")[0]
    token = path.split("token=")[1]

    await ok(chat, "alice", f"/space start {space_id} confirm:yes")
    live = await anon.get(path)
    assert f'id="join" href="{core.settings.resolved_public_url}/rooms/{space_id}#token=' in (
        live.text
    )
    assert 'id="refund"' not in live.text  # live: the policy's window has closed

    directory = store.directory(space_id)
    directory.mkdir(parents=True)
    (directory / "part-001.ogg").write_bytes(b"OggS" + bytes(996))
    (directory / "part-002.ogg").write_bytes(b"OggS" + bytes(96))
    early = await anon.get(f"/tickets/{ticket_id}/replays/1?token={token}")
    assert early.status_code == 409 and "once the Space has ended" in early.text

    clock.advance(timedelta(minutes=30))
    await ok(chat, "alice", f"/space end {space_id}")
    ended = await anon.get(path)
    assert 'id="join"' not in ended.text
    assert f'src="/tickets/{ticket_id}/replays/1?token=' in ended.text
    assert "media-src 'self'" in ended.headers["content-security-policy"]
    shown = await ok(chat, "bob", "/ticket show")
    assert "2 replay(s) until" in shown.text
    assert [b.label for b in shown.buttons] == [f"Replays #{space_id}"]

    ranged = await anon.get(
        f"/tickets/{ticket_id}/replays/1?token={token}", headers={"Range": "bytes=0-3"}
    )
    assert ranged.status_code == 206 and ranged.content == b"OggS"
    assert ranged.headers["content-type"] == "audio/ogg"
    assert (await anon.get(f"/tickets/{ticket_id}/replays/9?token={token}")).status_code == 404

    # the host deletes one recording, in chat; a listener may not
    refused = await chat.say("bob", f"/space replays {space_id} delete:2")
    assert refused.error
    listed = await ok(chat, "alice", f"/space replays {space_id}")
    assert "Recording 1 (0.0 MB)" in listed.text and "Recording 2" in listed.text
    assert "Ticket holders may replay the recordings until" in listed.text
    await ok(chat, "alice", f"/space replays {space_id} delete:2")
    assert not (directory / "part-002.ogg").exists()
    gone = await anon.get(f"/tickets/{ticket_id}/replays/2?token={token}")
    assert gone.status_code == 404

    # the host's window, set after the end; past it nothing is served, then it is purged
    edit = await core.spaces.edit(chat.actor("alice"), space_id, SpaceChanges(replay_days=2))
    assert [c.name for c in edit.changes] == ["replay_days"]
    clock.advance(timedelta(days=1))
    assert await core.replays.purge_expired() == 0
    clock.advance(timedelta(days=1, minutes=1))
    token = core.my_tickets.link_token(await core.tickets.get(ticket_id))
    late = await anon.get(f"/tickets/{ticket_id}/replays/1?token={token}")
    assert late.status_code == 409 and "were available until" in late.text
    assert 'src="/tickets/' not in (await anon.get(f"/tickets/{ticket_id}?token={token}")).text
    assert await core.replays.purge_expired() == 1
    assert not (directory / "part-001.ogg").exists()
    assert await core.replays.purge_expired() == 0  # once


async def test_the_desk_lists_recordings_and_the_host_deletes_one(
    chat: Chat, core: Core, anon: httpx.AsyncClient, tmp_path: Path
) -> None:
    store = RecordingStore(tmp_path)
    core.replays.use_store(StoreRecordings(store))
    space_id = await create(chat, "Recorded", "in 2 hours", "tickets:5")
    await ok(chat, "alice", f"/space start {space_id} confirm:yes")
    await ok(chat, "alice", f"/space end {space_id}")
    directory = store.directory(space_id)
    directory.mkdir(parents=True)
    for n in (1, 2):
        (directory / f"part-00{n}.ogg").write_bytes(b"OggS" + bytes(2_000_000))
    desk = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    page = await anon.get(desk)
    assert "Ticket holders may replay the recordings until" in page.text
    assert page.text.count('aria-label="Delete recording') == 2
    assert "Recording 1 (2.0 MB)" in page.text
    token = desk.split("token=")[1]
    done = await anon.post(
        f"/spaces/{space_id}/manage/recordings", data={"token": token, "delete": "1"}
    )
    assert done.status_code == 303
    assert [p.number for p in await core.replays.of_space(await core.spaces.get(space_id))] == [2]
    again = await anon.post(
        f"/spaces/{space_id}/manage/recordings", data={"token": token, "delete": "1"}
    )
    assert again.status_code == 404 and f"Space #{space_id} has no recording 1." in again.text


class FailingRefunds(StubPayments):
    """A gateway whose refunds fail (the payment service is down)."""

    async def refund(self, ticket: Ticket, *, reason: str) -> None:
        raise ConnectionError("the payment service is down")


async def test_a_refund_the_payment_service_fails_keeps_the_ticket_and_says_so(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    """Both refund buttons (the holder's page, the host's desk) answer 502 with why, and
    the ticket stays valid."""
    space_id = await paid_space(chat, core, FailingRefunds())
    path = manage_path(ticket_dm(chat, "bob"))
    ticket_id = path.split("/")[2].split("?")[0]
    desk_token = desk_path(await ok(chat, "alice", f"/space manage {space_id}")).split("token=")[1]
    for url, form in (
        (f"/tickets/{ticket_id}/refund", {"token": path.split("token=")[1]}),
        (f"/spaces/{space_id}/manage/refund", {"token": desk_token, "ticket": ticket_id}),
    ):
        answer = await anon.post(url, data=form)
        assert answer.status_code == 502, answer.text
        assert "could not refund this ticket just now; it stays valid." in answer.text
        assert (await core.tickets.get(ticket_id)).status == TicketStatus.VALID
