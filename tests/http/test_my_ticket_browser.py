"""Manage my ticket and the public page in a real browser: headless Chromium (Debian's,
driven by Playwright) opens the link from the ticket DM in a New York time zone, sees the
Space's time in that zone, refunds with the button, and plays a replay of an ended Space
(the page's CSP lets audio from here only); the public page shows its call to action and
held seats. Screenshots (light, dark, mobile) go to tests/artifacts/tickets/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from adapters.shell.chat import Chat
from audio.opus import FRAME_SAMPLES, OpusEncoder
from audio.recorder import Recorder
from audio.recordings import RecordingStore, StoreRecordings
from bot.announcements import AnnouncementLink
from bot.core import Core
from tests.audio.test_browser import FLAGS, chromium_path  # noqa: F401 (fixture)
from tests.audio.test_recording import tone
from tests.http.test_desk import StubPayments, create, ok, paid_space
from tests.http.test_my_ticket import manage_path, ticket_dm
from tests.serving import serve_asgi

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "tickets"


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serve_asgi(app) as base:
        yield base


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:  # noqa: F811
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=FLAGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Browser, errors: list[str], **options: object) -> Page:
    context = await browser.new_context(timezone_id="America/New_York", locale="en-GB", **options)  # type: ignore[arg-type]  # Playwright's own keyword types, passed through
    page = await context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


async def shots(browser: Browser, page: Page, url: str, name: str, errors: list[str]) -> None:
    """Light (as it is), dark and mobile screenshots of `url`; the phone never scrolls
    sideways."""
    await page.screenshot(path=str(ARTIFACTS / f"{name}-light.png"), full_page=True)
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(path=str(ARTIFACTS / f"{name}-dark.png"), full_page=True)
    await page.emulate_media(color_scheme="light")
    mobile = await new_page(browser, errors, viewport={"width": 390, "height": 844})
    await mobile.goto(url)
    await mobile.screenshot(path=str(ARTIFACTS / f"{name}-mobile.png"), full_page=True)
    assert await mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_the_holder_refunds_from_the_manage_page_in_chromium(
    chat: Chat, core: Core, served: str, browser: Browser
) -> None:
    payments = StubPayments()
    await paid_space(chat, core, payments)  # Sat 5 Jan 2030, 18:00 UTC
    path = manage_path(ticket_dm(chat, "bob"))
    ticket_id = path.split("/")[2].split("?")[0]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page = await new_page(browser, errors, viewport={"width": 1000, "height": 900})
    await page.goto(served + path)
    starts = await page.inner_text("#starts")
    assert "5 Jan 2030, 13:00 GMT-5" in starts, starts  # 18:00 UTC in New York
    assert "America/New_York" in await page.inner_text("[data-zone]")
    await shots(browser, page, served + path, "manage", errors)

    await page.click("#refund")
    notice = await page.wait_for_selector("#notice", timeout=15_000)
    assert notice is not None and await notice.inner_text() == f"Ticket {ticket_id} is refunded."
    assert await page.inner_text("#ticket-status") == "refunded"
    assert await page.query_selector("#refund") is None
    assert payments.refunded == [ticket_id]
    await page.screenshot(path=str(ARTIFACTS / "manage-refunded.png"), full_page=True)
    assert errors == []  # no script error, no CSP violation


async def test_a_replay_plays_on_the_manage_page_in_chromium(
    chat: Chat, core: Core, served: str, browser: Browser, tmp_path: Path
) -> None:
    store = RecordingStore(tmp_path)
    core.replays.use_store(StoreRecordings(store))
    space_id = await create(chat, "Replayable", "in 2 hours", "tickets:5")
    await ok(chat, "bob", f"/ticket buy {space_id}")
    await core.bus.drain()
    await ok(chat, "alice", f"/space start {space_id} confirm:yes")
    recorder = Recorder(store.next_path(space_id))
    await recorder.open()
    encoder = OpusEncoder()
    for index in range(100):  # 2 s of 440 Hz
        for packet in encoder.encode(tone(440, index), index * FRAME_SAMPLES):
            recorder.write(packet)
    await recorder.aclose()
    await ok(chat, "alice", f"/space end {space_id}")
    shown = await ok(chat, "bob", "/ticket show")
    url = next(b.url for b in shown.buttons if b.label == f"Replays #{space_id}")
    assert url is not None
    parts = urlsplit(url)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page = await new_page(browser, errors, viewport={"width": 1000, "height": 900})
    await page.goto(f"{served}{parts.path}?{parts.query}")
    await page.wait_for_selector("#replays audio")
    duration = await page.evaluate(
        """() => new Promise((done, fail) => {
            const audio = document.querySelector("#replays audio");
            audio.addEventListener("loadedmetadata", () => done(audio.duration));
            audio.addEventListener("error", () => fail(new Error("audio error")));
            audio.preload = "metadata";
            audio.load();
        })"""
    )
    assert 1.5 < duration < 2.5, duration
    assert "GMT-5" in await page.inner_text("#replays-until")  # the viewer's zone
    await page.screenshot(path=str(ARTIFACTS / "manage-replays.png"), full_page=True)
    assert errors == []


async def test_the_public_page_sells_in_chromium(
    chat: Chat, core: Core, served: str, browser: Browser
) -> None:
    space_id = await paid_space(chat, core, StubPayments())

    async def discord(found: int) -> AnnouncementLink | None:
        return AnnouncementLink("Discord", f"https://discord.com/channels/1/2/{found}")

    core.announcements.register(discord)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page = await new_page(browser, errors, viewport={"width": 1000, "height": 900})
    url = f"{served}/spaces/{space_id}"
    await page.goto(url)
    cta = page.locator("#cta a")
    assert await cta.inner_text() == "Get a ticket in Discord"
    assert await cta.get_attribute("href") == f"https://discord.com/channels/1/2/{space_id}"
    assert "7 left, 1 held awaiting payment" in await page.inner_text("main")
    await shots(browser, page, url, "public", errors)
    assert errors == []
