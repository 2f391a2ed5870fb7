"""The host's desk in a real browser: headless Chromium (Debian's, driven by Playwright)
opens the link `/space manage` sends, refunds one ticket with its button, and sees it
refunded. Screenshots (desktop light and dark, mobile) go to tests/artifacts/desk/.

The app is the real one, served by uvicorn on 127.0.0.1 in the test's own loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import async_playwright

from adapters.shell.chat import Chat
from bot.core import Core
from tests.audio.test_browser import FLAGS, chromium_path  # noqa: F401 (fixture)
from tests.http.test_desk import StubPayments, _identity, desk_path, ok, paid_space
from tests.serving import serve_asgi

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "desk"


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serve_asgi(app) as base:
        yield base


async def test_the_host_refunds_a_ticket_in_chromium(
    chat: Chat,
    core: Core,
    served: str,
    chromium_path: str,  # noqa: F811
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    bob = (await core.tickets.tickets_of((await _identity(core, "bob")).id or 0))[0]
    url = served + desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=FLAGS, timeout=30_000
        )
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(url)
            await page.wait_for_selector(f"#row-{bob.id}")
            await page.screenshot(path=str(ARTIFACTS / "desk-light.png"), full_page=True)

            await page.click(f"button[aria-label='Refund ticket {bob.id}']")
            notice = await page.wait_for_selector("#notice", timeout=15_000)
            assert notice is not None
            assert await notice.inner_text() == f"Ticket {bob.id} is refunded."
            status = await page.inner_text(f"#row-{bob.id} .st")
            assert status == "refunded"
            assert payments.refunded == [bob.id]
            await page.screenshot(path=str(ARTIFACTS / "desk-refunded.png"), full_page=True)

            await page.emulate_media(color_scheme="dark")
            await page.screenshot(path=str(ARTIFACTS / "desk-dark.png"), full_page=True)
            mobile = await browser.new_page(viewport={"width": 390, "height": 844})
            await mobile.goto(url)
            await mobile.wait_for_selector(f"#row-{bob.id}")
            await mobile.screenshot(path=str(ARTIFACTS / "desk-mobile.png"), full_page=True)
            assert await mobile.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            ), "the desk scrolls sideways on a phone"
        finally:
            await browser.close()
    assert errors == []  # no script error, no CSP violation
    async with httpx.AsyncClient(base_url=served) as client:  # a fresh link over real HTTP
        fresh = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
        assert (await client.get(fresh)).status_code == 200
