"""The host's desk in a real browser, in Chromium and in Firefox ESR (`tests.audio.browsers`):
it opens the link `/space manage` sends, refunds one ticket with its button, and sees it
refunded. Screenshots (desktop light and dark, mobile) go to tests/artifacts/{browser}/.

The app is the real one, served by uvicorn on 127.0.0.1 in the test's own loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from adapters.shell.chat import Chat
from bot.core import Core
from tests.audio.browsers import Browser, Tab, click, shot, text_of, wait_for
from tests.http.test_desk import StubPayments, _identity, desk_path, ok, paid_space
from tests.serving import serve_asgi

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serve_asgi(app) as base:
        yield base


async def opened(
    browser: Browser, url: str, ready: str, *, width: int, height: int, dark: bool = False
) -> Tab:
    """A new tab on ``url``, once ``ready`` (a CSS selector) is on the page."""
    tab = await browser.tab(width=width, height=height, dark=dark)
    await tab.goto(url)
    await wait_for(tab, f"!!document.querySelector({ready!r})", what=ready)
    return tab


async def test_the_host_refunds_a_ticket(
    chat: Chat, core: Core, served: str, any_browser: Browser
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    bob = (await core.tickets.tickets_of((await _identity(core, "bob")).id or 0))[0]
    url = served + desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    row = f"#row-{bob.id}"
    page = await opened(any_browser, url, row, width=1100, height=900)
    await shot(page, "desk-light")

    await click(page, f"button[aria-label='Refund ticket {bob.id}']")
    notice = await wait_for(page, "(document.querySelector('#notice') || {}).textContent")
    assert notice.strip() == f"Ticket {bob.id} is refunded."
    assert await text_of(page, f"{row} .st") == "refunded"
    assert payments.refunded == [bob.id]
    await shot(page, "desk-refunded")

    dark = await opened(any_browser, url, row, width=1100, height=900, dark=True)
    assert await dark.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is True
    await shot(dark, "desk-dark")
    mobile = await opened(any_browser, url, row, width=390, height=844)
    await shot(mobile, "desk-mobile")
    assert await mobile.evaluate(OVERFLOW) <= 1, "the desk scrolls sideways on a phone"
    for tab in (page, dark, mobile):
        assert tab.errors == []  # no script error, no CSP violation
    async with httpx.AsyncClient(base_url=served) as client:  # a fresh link over real HTTP
        fresh = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
        assert (await client.get(fresh)).status_code == 200
