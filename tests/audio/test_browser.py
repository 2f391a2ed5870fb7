"""A real browser in the room: headless Chromium (Debian's, driven by Playwright) opens the
ticket link, hears the host's tone, is promoted, and its fake microphone's tone is heard by
an aiortc listener. Screenshots of each state go to tests/artifacts/audio/.

The app is the real one (`bot.http.create_app` with the routers `audio.install` adds),
served by uvicorn on 127.0.0.1 in the test's own loop, so the room, the core and the clients
share one event loop. The aioice loopback patch (conftest) covers only this process:
Chromium offers its loopback candidates itself, with ``--allow-loopback-in-peer-connection``.
"""

from __future__ import annotations

import array
import asyncio
import math
import os
import re
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from audio.gate import Role
from audio.room import BridgedParticipant
from bot.actors import Actor, UserRef
from bot.models import Platform
from tests.audio.conftest import HOST, World
from tests.audio.rtc_harness import RATE, eventually

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = os.environ.get("STAGEPASS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "audio"
HOST_TONE = 440
MIC_TONE = 880

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]

# Keep every RTCPeerConnection the page makes, so the test can read its stats.
CAPTURE_PEERS = """
window.__pcs = [];
(function () {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();
"""

INBOUND = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const out = {packets: 0, bytes: 0, sentPackets: 0};
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.packets = s.packetsReceived; out.bytes = s.bytesReceived;
    }
    if (s.type === "outbound-rtp" && s.kind === "audio") { out.sentPackets = s.packetsSent; }
  });
  return out;
}
"""

PEAK = """
async () => {
  const audio = document.getElementById("room-audio");
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(audio.srcObject).connect(analyser);
  await new Promise((resolve) => setTimeout(resolve, 700));
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 1;
  for (let i = 2; i < bins.length; i++) { if (bins[i] > bins[best]) { best = i; } }
  const result = {frequency: best * ctx.sampleRate / analyser.fftSize, db: bins[best]};
  await ctx.close();
  return result;
}
"""

SENDER_TRACK = """
() => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const track = pc.getSenders()[0].track;
  return track ? track.readyState : null;
}
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"BROWSER TEST SKIPPED: no Chromium at {CHROMIUM}. Install Debian's chromium "
            "(`make browser`) or set STAGEPASS_CHROMIUM; the room page is untested in a browser."
        )
    return CHROMIUM


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    """Ten seconds of 880 Hz, 48 kHz mono s16: Chromium's fake microphone loops it."""
    path = tmp_path / "mic-880.wav"
    samples = array.array(
        "h", (int(12_000 * math.sin(2 * math.pi * MIC_TONE * n / RATE)) for n in range(RATE * 10))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


@pytest.fixture
async def browser(chromium_path: str, tone_wav: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={tone_wav}"],
            timeout=30_000,
        )
        try:
            yield browser
        finally:
            await browser.close()


class Watched:
    """A page with its script errors and CSP violations collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"CSP: {message.text}")

    async def state(self, name: str, *, within_ms: float = 20_000) -> None:
        await self.page.wait_for_selector(f'#room[data-state="{name}"]', timeout=within_ms)

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"room-{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def evaluate(self, script: str) -> Any:
        return await self.page.evaluate(script)


async def open_room(browser: Browser, url: str) -> Watched:
    context = await browser.new_context(viewport={"width": 820, "height": 900})
    await context.add_init_script(CAPTURE_PEERS)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    watched = Watched(page)
    await page.goto(url)
    return watched


async def test_a_browser_listens_speaks_when_promoted_and_sees_every_state(
    scheduled: World, base_url: str, browser: Browser
) -> None:
    world = scheduled
    core, space_id = world.core, world.space_id
    ann = await world.ticket("ann")
    link = f"{base_url}/rooms/{space_id}#token={ann.token}"

    # -- not started yet: a countdown in the viewer's zone; the token left the URL ----------
    room = await open_room(browser, link)
    page = room.page
    await room.state("waiting")
    assert page.url == f"{base_url}/rooms/{space_id}"
    stored = await page.evaluate(f"sessionStorage.getItem('stagepass:room:{space_id}:token')")
    assert stored == ann.token
    countdown = await page.text_content("#countdown")
    assert re.fullmatch(r"in (2 h 00 min 00|1 h 59 min \d\d) s", countdown or ""), countdown
    assert "your time" in (await page.text_content("#starts-zone") or "")
    await room.shot("not-started")

    # -- the host starts and speaks: the page joins by itself and hears the host ----------
    await world.start()
    await world.join(world.host, tone=HOST_TONE)
    await room.state("live", within_ms=30_000)
    first = await room.evaluate(INBOUND)
    await asyncio.sleep(1.0)
    later = await room.evaluate(INBOUND)
    assert later["packets"] - first["packets"] >= 30, (first, later)  # ~50/s
    assert later["bytes"] > first["bytes"] > 0
    peak = await room.evaluate(PEAK)
    assert abs(peak["frequency"] - HOST_TONE) < 15, peak
    await page.wait_for_selector("#stage li.speaking >> text=Hal")
    assert "Host" in (await page.text_content("#stage") or "")
    assert await page.text_content("#listener-count") == "1"
    await room.shot("live")

    # -- a speaker in the bridged Discord channel is listed with a Discord badge ----------
    world.room().put_bridged(BridgedParticipant("discord:g:7", "Dee", "discord", role=Role.SPEAKER))
    dee = await page.wait_for_selector("#stage li:has-text('Dee')")
    assert dee is not None and "Discord" in (await dee.text_content() or "")
    assert await page.query_selector("#stage li:has-text('Hal') .via-discord") is None
    assert world.room().drop_bridged("discord:g:7")

    # -- the server drops the connection: the page says so and comes back ------------------
    assert await world.room().remove(ann.key)
    await room.state("reconnecting")
    assert "reconnecting" in (await page.text_content("#state-reconnecting h2") or "")
    await room.shot("reconnecting")
    await room.state("live", within_ms=30_000)
    await eventually(lambda: ann.key in world.room(), what="page rejoined")

    # -- raise a hand with the keyboard, get promoted, and be heard -------------------------
    await page.focus("#btn-hand")
    await page.keyboard.press("Enter")
    await page.wait_for_selector('#btn-hand[aria-pressed="true"]')
    queue = (await core.stage.state(space_id)).queue
    assert [seat.identity.user_id for seat in queue] == ["ann"]

    bob = await world.ticket("bob")
    listener = await world.join(bob)
    await core.stage.promote(HOST, space_id, UserRef("ann"))
    await page.wait_for_selector("#btn-mic:not([hidden])")
    await eventually(
        lambda: listener.probe.share(MIC_TONE) > 0.1,
        within=15,
        what="the aiortc listener hears the browser's microphone",
    )
    assert listener.probe.share(HOST_TONE) > 0.05  # and still the host
    sent = await room.evaluate(INBOUND)
    assert sent["sentPackets"] > 0 and await room.evaluate(SENDER_TRACK) == "live"

    record = await world.http.post(
        f"/rooms/{space_id}/recording", json={"on": True}, headers=world.host.bearer
    )
    assert record.json() == {"recording": True}
    await page.wait_for_selector("#badge-recording:not([hidden])")
    await page.wait_for_selector("#stage li.speaking >> text=Ann")
    await room.shot("promoted")

    # -- demoted: the microphone is off and nobody hears it ---------------------------------
    await core.stage.demote(HOST, space_id, UserRef("ann"))
    await page.wait_for_selector("#btn-hand:not([hidden])")
    await eventually(
        lambda: listener.probe.share(MIC_TONE) < 0.01,
        within=10,
        what="the demoted browser is no longer heard",
    )
    assert await room.evaluate(SENDER_TRACK) is None

    # -- the end: the page says so and offers the recording --------------------------------
    await asyncio.sleep(1.0)  # a second of recording worth replaying
    await core.spaces.end(HOST, space_id)
    await room.state("ended", within_ms=30_000)
    play = await page.wait_for_selector("#recording-list button", timeout=20_000)
    assert play is not None
    await play.press("Enter")
    audio = await page.wait_for_selector("#recording-list audio")
    assert audio is not None
    assert (await audio.get_attribute("src") or "").startswith("blob:")
    await room.shot("ended")

    assert room.errors == []
    await listener.close()


async def test_a_forged_ticket_to_a_live_room_is_refused(
    scheduled: World, base_url: str, browser: Browser
) -> None:
    world = scheduled
    await world.start()
    ann = await world.ticket("ann")
    body, _, signature = ann.token.partition(".")
    room = await open_room(
        browser, f"{base_url}/rooms/{world.space_id}#token={body}.{signature[::-1]}"
    )
    await room.state("denied")
    assert await room.page.text_content("#denied-title") == "Ticket not valid"
    assert "not valid" in (await room.page.text_content("#denied-detail") or "")
    await room.shot("invalid-ticket")

    bare = await open_room(browser, f"{base_url}/rooms/{world.space_id}")  # no token at all
    await bare.state("denied")
    assert "link from your ticket" in (await bare.page.text_content("#denied-detail") or "")
    assert len(world.room()) == 0 and room.errors == [] and bare.errors == []


async def test_leave_rejoin_and_a_second_tab(
    scheduled: World, base_url: str, browser: Browser
) -> None:
    world = scheduled
    await world.start()
    await world.join(world.host, tone=HOST_TONE)
    ann = await world.ticket("ann")
    link = f"{base_url}/rooms/{world.space_id}#token={ann.token}"
    first = await open_room(browser, link)
    await first.state("live", within_ms=30_000)
    await first.page.set_viewport_size({"width": 380, "height": 800})  # a phone
    await first.shot("live-narrow")

    await first.page.click("#btn-leave")
    await first.state("left")
    assert await first.page.evaluate("document.activeElement.id") == "btn-rejoin"
    await eventually(lambda: ann.key not in world.room(), within=15, what="the server let go")
    await first.page.keyboard.press("Enter")  # Rejoin, from the keyboard
    await first.state("live", within_ms=30_000)

    # The same ticket in a second tab takes over; the first says so instead of fighting back.
    second = await open_room(browser, link)
    await second.state("live", within_ms=30_000)
    await first.state("replaced", within_ms=30_000)
    await first.shot("replaced")
    await asyncio.sleep(3)
    assert await second.page.get_attribute("#room", "data-state") == "live"
    assert len(world.room()) == 2  # the host and one session for the ticket

    # A co-host joins from the browser, on stage at once, and records from the page.
    await world.core.spaces.set_cohost(HOST, world.space_id, UserRef("cora", "Cora"), add=True)
    cora = await world.staff(Actor(Platform.DISCORD, "guild1", "cora", "Cora"), "cohost")
    staff = await open_room(browser, f"{base_url}/rooms/{world.space_id}#token={cora.token}")
    await staff.state("live", within_ms=30_000)
    await staff.page.wait_for_selector("#btn-mic:not([hidden])")
    record = await staff.page.wait_for_selector("#btn-record:not([hidden])")
    assert record is not None and await record.text_content() == "Start recording"
    await record.press("Enter")
    await staff.page.wait_for_selector('#btn-record[aria-pressed="true"]')
    await second.page.wait_for_selector("#badge-recording:not([hidden])")
    assert world.room().recording
    await staff.page.wait_for_selector("#stage li.speaking >> text=Cora")
    await staff.shot("cohost")
    assert first.errors == [] and second.errors == [] and staff.errors == []
