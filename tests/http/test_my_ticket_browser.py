"""Manage my ticket and the public page in a real browser, in Chromium and in Firefox ESR
(`tests.audio.browsers`): the holder opens the link from the ticket DM in a New York time
zone, sees the Space's time in that zone, refunds with the button, and plays a replay of an
ended Space (the page's CSP lets audio from here only); the public page shows its call to
action and held seats. Screenshots (light, dark, mobile) go to tests/artifacts/{browser}/."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from adapters.shell.chat import Chat
from audio.opus import FRAME_SAMPLES, OpusEncoder
from audio.recorder import Recorder
from audio.recordings import RecordingStore, StoreRecordings
from bot.announcements import AnnouncementLink
from bot.core import Core
from tests.audio.browsers import (
    Browser,
    Tab,
    click,
    dark_and_mobile,
    opened,
    shot,
    text_of,
    wait_for,
)
from tests.audio.test_recording import tone
from tests.fakes.payments import StubPayments
from tests.http.test_desk import create, ok, paid_space
from tests.http.test_my_ticket import manage_path, ticket_dm

pytestmark = [pytest.mark.browser]

NEW_YORK = "America/New_York"
IN_NEW_YORK = {"timezone": NEW_YORK, "locale": "en-GB"}


async def new_tab(browser: Browser, url: str, **options: Any) -> Tab:
    """A tab in New York (en-GB) on ``url``, 1000 px wide unless `options` say otherwise."""
    return await opened(browser, url, **{"width": 1000, **options, **IN_NEW_YORK})


async def shots(browser: Browser, page: Tab, url: str, name: str) -> list[Tab]:
    """Light (as it is), dark and mobile screenshots of `url`, in New York. The tabs
    opened, for their errors."""
    await shot(page, f"{name}-light")
    return await dark_and_mobile(browser, url, name, width=1000, **IN_NEW_YORK)


async def test_the_holder_refunds_from_the_manage_page(
    chat: Chat, core: Core, served: str, any_browser: Browser
) -> None:
    payments = StubPayments()
    await paid_space(chat, core, payments)  # Sat 5 Jan 2030, 18:00 UTC
    path = manage_path(ticket_dm(chat, "bob"))
    ticket_id = path.split("/")[2].split("?")[0]
    page = await new_tab(any_browser, served + path)
    starts = await wait_for(page, "(document.querySelector('#starts') || {}).textContent")
    assert "5 Jan 2030, 13:00 GMT-5" in starts, starts  # 18:00 UTC in New York
    assert NEW_YORK in await text_of(page, "[data-zone]")
    others = await shots(any_browser, page, served + path, "manage")

    await click(page, "#refund")
    notice = await wait_for(page, "(document.querySelector('#notice') || {}).textContent")
    assert notice.strip() == f"Ticket {ticket_id} is refunded."
    assert await text_of(page, "#ticket-status") == "refunded"
    assert await page.evaluate("!document.querySelector('#refund')") is True
    assert payments.refunded == [ticket_id]
    await shot(page, "manage-refunded")
    for tab in (page, *others):
        assert tab.errors == []  # no script error, no CSP violation


async def test_a_replay_plays_on_the_manage_page(
    chat: Chat, core: Core, served: str, any_browser: Browser, tmp_path: Path
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

    page = await new_tab(any_browser, f"{served}{parts.path}?{parts.query}")
    await wait_for(page, "!!document.querySelector('#replays audio')", what="the replay")
    duration = await page.evaluate(
        """new Promise((done, fail) => {
            const audio = document.querySelector("#replays audio");
            audio.addEventListener("loadedmetadata", () => done(audio.duration));
            audio.addEventListener("error", () => fail(new Error("audio error")));
            audio.preload = "metadata";
            audio.load();
        })"""
    )
    assert 1.5 < duration < 2.5, duration
    assert "GMT-5" in await text_of(page, "#replays-until")  # the viewer's zone
    await shot(page, "manage-replays")
    assert page.errors == []


async def test_the_public_page_sells(
    chat: Chat, core: Core, served: str, any_browser: Browser
) -> None:
    space_id = await paid_space(chat, core, StubPayments())

    async def discord(found: int) -> AnnouncementLink | None:
        return AnnouncementLink("Discord", f"https://discord.com/channels/1/2/{found}")

    core.announcements.register(discord)
    url = f"{served}/spaces/{space_id}"
    page = await new_tab(any_browser, url)
    assert await text_of(page, "#cta a") == "Get a ticket in Discord"
    href = await page.evaluate("document.querySelector('#cta a').getAttribute('href')")
    assert href == f"https://discord.com/channels/1/2/{space_id}"
    assert "7 left, 1 held awaiting payment" in await text_of(page, "main")
    others = await shots(any_browser, page, url, "public")
    for tab in (page, *others):
        assert tab.errors == []
