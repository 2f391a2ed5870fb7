"""The public Space page: content, escaping, time fallback, 404, and no external assets."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import icalendar

from adapters.shell.chat import Chat
from bot.announcements import AnnouncementLink
from bot.core import Core
from tests.fakes.payments import StubPayments
from tests.http.conftest import space_body
from tests.http.test_desk import paid_space


async def _create(client: httpx.AsyncClient, **overrides: object) -> int:
    response = await client.post("/api/v1/spaces", json=space_body(**overrides))
    assert response.status_code == 201, response.text
    space_id: int = response.json()["id"]
    return space_id


async def test_space_page_shows_the_space(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, core: Core
) -> None:
    space_id = await _create(client, capacity=25, description="Bring questions.")
    page = await anon.get(f"/spaces/{space_id}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<h1 id="space-title">Ask me anything</h1>' in html
    assert "Hosted by <strong>Alice</strong>" in html
    assert "Bring questions." in html
    assert (
        '<time datetime="2030-01-03T16:00:00Z" data-local>Thu 3 Jan 2030, 16:00 UTC</time>' in html
    )  # the no-JS fallback
    assert "Intl.DateTimeFormat" in html
    assert "Free" in html and "25 left of 25" in html and "Scheduled" in html
    assert f"/ticket buy {space_id}" in html

    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce and f'<script nonce="{nonce.group(1)}">' in html
    # nothing loaded from elsewhere (the calendar links are plain links, opened in a new tab)
    assert not re.search(r'src="(https?:)?//', html)
    assert not re.search(r'<link[^>]+href="(https?:)?//', html)
    await core.bus.drain()


async def test_space_page_escapes_html(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    evil = '<script>alert("x")</script>'
    space_id = await _create(
        client,
        title=evil,
        description="<b>bold</b> & more",
        host={
            "platform": "discord",
            "community": "guild1",
            "user_id": "mallory",
            "display_name": "<img src=x>",
        },
    )
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert evil not in html and "<b>bold</b>" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html


async def test_cancelled_space_page(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    space_id = await _create(client)
    await client.post(f"/api/v1/spaces/{space_id}/cancel", json={"reason": "Snowed in"})
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert "Cancelled" in html and "Snowed in" in html and "/ticket buy" not in html


async def test_unknown_space_is_a_404_page(anon: httpx.AsyncClient) -> None:
    for path in ("/spaces/999", "/spaces/not-a-number", "/spaces/%3Cscript%3E"):
        page = await anon.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "There is no such Space" in page.text
        assert "<script>" not in page.text.split("</main>")[0]


async def test_live_space_page_tells_ticket_holders_where_the_room_is_without_a_link(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, core: Core
) -> None:
    """A visitor without a ticket gets no room link; the page says when it started."""
    space_id = await _create(client)
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert "<dt>Starts</dt>" in html and "from the link in your ticket message" not in html
    await core.spaces.start(None, space_id, confirm=True)
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert f"/rooms/{space_id}" not in html
    assert "open the audio room from the link in your ticket message" in html
    assert "<dt>Started</dt>" in html and "Tue 1 Jan 2030, 12:00 UTC" in html  # the test clock
    await core.spaces.end(None, space_id)
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert "<dt>Ended</dt>" in html and "Add to calendar" not in html


async def test_the_front_page_lists_upcoming_spaces(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    empty = await anon.get("/")
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("text/html")
    assert "No Space is announced right now" in empty.text
    later = await _create(client, title="Later <b>show</b>", starts_at="2030-01-05T18:00:00Z")
    sooner = await _create(client, title="Sooner", starts_at="2030-01-02T18:00:00Z")
    gone = await _create(client, title="Gone")
    await client.post(f"/api/v1/spaces/{gone}/cancel", json={"reason": "ill"})
    html = (await anon.get("/")).text
    assert html.index(f'href="/spaces/{sooner}"') < html.index(f'href="/spaces/{later}"')
    assert "Later &lt;b&gt;show&lt;/b&gt;" in html and "Gone" not in html
    assert '<time datetime="2030-01-02T18:00:00Z" data-local>' in html


async def test_a_space_goes_into_a_calendar(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    space_id = await _create(client, title="Jazz, night; live", description="Line one\nTwo")
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert f'href="/spaces/{space_id}/calendar.ics"' in html
    google = re.search(r'href="(https://calendar\.google\.com/[^"]+)"', html)
    outlook = re.search(r'href="(https://outlook\.live\.com/[^"]+)"', html)
    assert google and outlook
    query = parse_qs(urlsplit(google.group(1).replace("&amp;", "&")).query)
    assert query["text"] == ["Jazz, night; live"]
    assert query["dates"] == ["20300103T160000Z/20300103T170000Z"]
    query = parse_qs(urlsplit(outlook.group(1).replace("&amp;", "&")).query)
    assert query["startdt"] == ["2030-01-03T16:00:00Z"]
    assert query["subject"] == ["Jazz, night; live"]

    ics = await anon.get(f"/spaces/{space_id}/calendar.ics")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    [event] = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert str(event["summary"]) == "Jazz, night; live"  # escaped on the wire, whole here
    assert event.decoded("dtstart") == datetime(2030, 1, 3, 16, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2030, 1, 3, 17, 0, tzinfo=UTC)
    assert str(event["url"]).endswith(f"/spaces/{space_id}") and "Line one\nTwo" in str(
        event["description"]
    )
    assert "status" not in event

    await client.post(f"/api/v1/spaces/{space_id}/cancel", json={"reason": "ill"})
    [cancelled] = icalendar.Calendar.from_ical(
        (await anon.get(f"/spaces/{space_id}/calendar.ics")).content
    ).walk("VEVENT")
    assert str(cancelled["status"]) == "CANCELLED" and cancelled["uid"] == event["uid"]
    assert (await anon.get("/spaces/99999999999999999999/calendar.ics")).status_code == 404


async def test_the_page_sells_with_links_to_the_announcements_and_shows_held_seats(
    chat: Chat, core: Core, anon: httpx.AsyncClient
) -> None:
    space_id = await paid_space(chat, core, StubPayments())  # 2 paid, 1 held, of 10

    async def discord(found: int) -> AnnouncementLink | None:
        url = f"https://discord.com/channels/1/2/{found}00"
        return AnnouncementLink("Discord", url) if found == space_id else None

    async def broken(found: int) -> AnnouncementLink | None:
        raise RuntimeError("the platform is down")

    core.announcements.register(discord)
    core.announcements.register(broken)  # left out, logged: the page still shows
    html = (await anon.get(f"/spaces/{space_id}")).text
    assert "7 left, 1 held awaiting payment" in html
    cta = re.search(r'<div class="cta" id="cta">(.*?)</div>', html, re.S)
    assert cta is not None
    assert re.findall(r'<a href="([^"]+)"', cta.group(1)) == [
        f"https://discord.com/channels/1/2/{space_id}00"
    ]
    assert "Get a ticket in Discord" in cta.group(1) and f"/ticket buy {space_id}" in cta.group(1)
    front = (await anon.get("/")).text
    assert "7 left, 1 held awaiting payment" in front
