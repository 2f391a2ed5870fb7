"""The public Space page: content, escaping, time fallback, 404, and no external assets."""

from __future__ import annotations

import re

import httpx

from bot.core import Core
from tests.http.conftest import space_body


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
    assert "Free" in html and "25 of 25" in html and "Scheduled" in html
    assert f"/ticket buy {space_id}" in html

    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce and f'<script nonce="{nonce.group(1)}">' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from elsewhere
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


async def test_live_space_page_points_ticket_holders_to_the_room(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, core: Core
) -> None:
    space_id = await _create(client)
    assert f"/rooms/{space_id}" not in (await anon.get(f"/spaces/{space_id}")).text
    await core.spaces.start(None, space_id)
    assert f'href="/rooms/{space_id}"' in (await anon.get(f"/spaces/{space_id}")).text
