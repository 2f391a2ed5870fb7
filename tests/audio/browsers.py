"""One small tab interface over two browsers, so every browser test (the room, the desk, the
public page, manage-my-ticket) runs in both: Chromium through Playwright (CDP), and Debian's
Firefox ESR through WebDriver BiDi.

Playwright's own Firefox path for a system browser (``channel="moz-firefox"``) needs BiDi
commands Firefox ESR 153 lacks: every new context sends ``emulation.setMediaFeaturesOverride``
and ESR answers "unknown command". So Firefox is driven here by a minimal BiDi client over
aiohttp's websocket (session, browsing context, script, screenshot, viewport).

Scripts are expressions; their value comes back through JSON, so both drivers agree. A tab
may ask for dark mode, a time zone and a locale: Chromium's context takes all three; Firefox
takes the zone and locale over BiDi (``emulation.set*Override``), but ESR has no media
feature override, so a dark tab opens in a second Firefox whose profile prefers dark
(``layout.css.prefers-color-scheme.content-override``), launched on first use.
"""

from __future__ import annotations

import abc
import array
import asyncio
import base64
import contextlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import tempfile
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from tests.waiting import eventually

logger = logging.getLogger(__name__)

CHROMIUM = os.environ.get("STAGEPASS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FIREFOX = (
    os.environ.get("STAGEPASS_FIREFOX") or shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_MIC_TONE = 880
"""Chromium's fake microphone plays the test's WAV file of this tone."""
FIREFOX_MIC_TONE = 1000
"""Firefox's fake microphone (media.navigator.streams.fake) is a 1 kHz tone."""

CHROMIUM_FLAGS = [
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

FIREFOX_PREFS: dict[str, bool | int | str] = {
    # a fake microphone (a tone) granted without asking
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # audio plays without a click; ICE offers 127.0.0.1 and plain host addresses, no mDNS
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.no_host": False,
    # quiet and offline
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "network.captive-portal-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "remote.prefs.recommended": True,
}
FIREFOX_DARK: dict[str, bool | int | str] = {
    # pages see prefers-color-scheme: dark (0 dark, 1 light, 2 as the browser's theme)
    "layout.css.prefers-color-scheme.content-override": 0,
}


def _wrap(expression: str) -> str:
    return f"(async () => JSON.stringify(await ({expression})))()"


class Tab(Protocol):
    """What the room's browser tests do with a page, in either browser."""

    browser: str
    errors: list[str]
    """Script errors and Content-Security-Policy violations the page logged."""

    async def goto(self, url: str) -> None: ...

    async def press(self, key: str) -> None:
        """Press a key ("Enter") on whatever has the focus."""

    async def evaluate(self, expression: str) -> Any: ...

    async def set_viewport(self, width: int, height: int) -> None: ...

    async def screenshot(self, path: Path) -> None: ...


async def wait_for(tab: Tab, expression: str, *, within: float = 20.0, what: str = "") -> Any:
    """Poll ``expression`` in the page until it is truthy; its value. A script that fails
    because the page is navigating (a form was sent) is asked again."""

    async def value() -> Any:
        try:
            return await tab.evaluate(expression)
        except (BidiError, PlaywrightError) as exc:
            logger.debug("%s: asking again after %s", tab.browser, exc)
            return None

    return await eventually(
        value, what=f"{tab.browser}: {what or expression}", within=within, every=0.1
    )


async def text_of(tab: Tab, selector: str) -> str:
    """The text content of the first element matching ``selector`` ("" if none)."""
    found = await tab.evaluate(
        f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"
    )
    return str(found or "").strip()


async def click(tab: Tab, selector: str) -> None:
    """Click the first element matching ``selector`` (it must be there and enabled)."""
    await wait_for(
        tab,
        f"(() => {{ const b = document.querySelector({json.dumps(selector)});"
        " if (!b || b.disabled || b.closest('[hidden]')) { return false; }"
        " b.click(); return true; })()",
        what=f"{selector} to click",
    )


async def shot(tab: Tab, name: str) -> Path:
    """A full-page screenshot under tests/artifacts/{browser}/ (made on demand)."""
    folder = ARTIFACTS / tab.browser
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await tab.screenshot(path)
    return path


#: How far a page scrolls sideways (on a phone: not at all, 1 px for rounding).
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


async def opened(browser: Browser, url: str, *, ready: str = "", **options: Any) -> Tab:
    """A new tab (`options` as `Browser.tab`'s) on ``url``, once ``ready`` (a CSS
    selector, if given) is on the page."""
    tab = await browser.tab(**options)
    await tab.goto(url)
    if ready:
        await wait_for(tab, f"!!document.querySelector({ready!r})", what=ready)
    return tab


async def dark_and_mobile(
    browser: Browser, url: str, name: str, *, ready: str = "", **options: Any
) -> list[Tab]:
    """Screenshots of ``url`` dark (`options` as `Browser.tab`'s) and on a phone (390 x 844),
    which never scrolls sideways. The two tabs, for their errors."""
    dark = await opened(browser, url, ready=ready, **{**options, "dark": True})
    assert await dark.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is True
    await shot(dark, f"{name}-dark")
    mobile = await opened(browser, url, ready=ready, **{**options, "width": 390, "height": 844})
    await shot(mobile, f"{name}-mobile")
    assert await mobile.evaluate(OVERFLOW) <= 1, f"{name} scrolls sideways on a phone"
    return [dark, mobile]


class PlaywrightTab:
    def __init__(self, page: Page, browser: str) -> None:
        self.page = page
        self.browser = browser
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"CSP: {message.text}")

    async def press(self, key: str) -> None:
        await self.page.keyboard.press(key)

    async def goto(self, url: str) -> None:
        await self.page.goto(url)

    async def evaluate(self, expression: str) -> Any:
        return json.loads(await self.page.evaluate(_wrap(expression)) or "null")

    async def set_viewport(self, width: int, height: int) -> None:
        await self.page.set_viewport_size({"width": width, "height": height})

    async def screenshot(self, path: Path) -> None:
        await self.page.screenshot(path=str(path), full_page=True)


_KEYS = {"Enter": "\ue007", "Tab": "\ue004", "Escape": "\ue00c"}
"""WebDriver's key codes for the keys the tests press."""


class BidiError(Exception):
    pass


class BidiSession:
    """A WebDriver BiDi session on one Firefox: commands by id, events ignored."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.logs: dict[str, list[str]] = {}
        """Per browsing context: script errors and CSP reports (log.entryAdded)."""
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="bidi-reader")

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("method") == "log.entryAdded":
                self._log(data["params"])
                continue
            waiter = self._waiting.pop(data.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(BidiError("Firefox closed the BiDi connection"))

    def _log(self, entry: dict[str, Any]) -> None:
        context = entry.get("source", {}).get("context", "")
        text = str(entry.get("text", ""))
        if entry.get("type") == "javascript" and entry.get("level") == "error":
            self.logs.setdefault(context, []).append(f"pageerror: {text}")
        elif "Content-Security-Policy" in text or "Content Security Policy" in text:
            self.logs.setdefault(context, []).append(f"CSP: {text}")

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        command_id = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = waiter
        await self.ws.send_json({"id": command_id, "method": method, "params": params})
        reply = await asyncio.wait_for(waiter, 60)
        if reply.get("type") == "error":
            raise BidiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class BidiTab:
    def __init__(self, session: BidiSession, context: str) -> None:
        self.session = session
        self.context = context
        self.browser = "firefox"
        self.errors = session.logs.setdefault(context, [])

    async def press(self, key: str) -> None:
        value = _KEYS.get(key, key)
        await self.session.send(
            "input.performActions",
            {
                "context": self.context,
                "actions": [
                    {
                        "type": "key",
                        "id": "keyboard",
                        "actions": [
                            {"type": "keyDown", "value": value},
                            {"type": "keyUp", "value": value},
                        ],
                    }
                ],
            },
        )

    async def goto(self, url: str) -> None:
        await self.session.send(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def evaluate(self, expression: str) -> Any:
        result = await self.session.send(
            "script.evaluate",
            {
                "expression": _wrap(expression),
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"script error: {details.get('text')}")
        value = result["result"].get("value")
        return json.loads(value) if isinstance(value, str) else None

    async def set_viewport(self, width: int, height: int) -> None:
        await self.session.send(
            "browsingContext.setViewport",
            {"context": self.context, "viewport": {"width": width, "height": height}},
        )

    async def screenshot(self, path: Path) -> None:
        result = await self.session.send(
            "browsingContext.captureScreenshot", {"context": self.context, "origin": "document"}
        )
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))


@dataclass(frozen=True, slots=True)
class TabSpec:
    """What a new tab is like: its viewport, a script run before each page's own, a dark
    colour scheme, a time zone and a locale (None: the browser's)."""

    width: int
    height: int
    init_script: str
    dark: bool
    timezone: str | None
    locale: str | None


class Browser(abc.ABC):
    name: str
    mic_tone: int
    """The frequency the browser's fake microphone plays."""

    async def tab(
        self,
        *,
        width: int = 820,
        height: int = 900,
        init_script: str = "",
        dark: bool = False,
        timezone: str | None = None,
        locale: str | None = None,
    ) -> Tab:
        """A new tab in a context of its own (no cookies shared with other tabs)."""
        return await self._open(TabSpec(width, height, init_script, dark, timezone, locale))

    @abc.abstractmethod
    async def _open(self, spec: TabSpec) -> Tab: ...


class ChromiumBrowser(Browser):
    name = "chromium"
    mic_tone = CHROMIUM_MIC_TONE

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    async def _open(self, spec: TabSpec) -> Tab:
        context = await self._browser.new_context(
            viewport={"width": spec.width, "height": spec.height},
            color_scheme="dark" if spec.dark else "light",
            timezone_id=spec.timezone,
            locale=spec.locale,
        )
        if spec.init_script:
            await context.add_init_script(spec.init_script)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        return PlaywrightTab(page, self.name)


class FirefoxBrowser(Browser):
    name = "firefox"
    mic_tone = FIREFOX_MIC_TONE

    def __init__(self, session: BidiSession, twins: contextlib.AsyncExitStack) -> None:
        self.session = session
        self._twins = twins
        self._dark: FirefoxBrowser | None = None

    async def _open(self, spec: TabSpec) -> Tab:
        if spec.dark:
            if self._dark is None:
                twin = await self._twins.enter_async_context(firefox(dark=True))
                assert isinstance(twin, FirefoxBrowser)
                self._dark = twin
            return await self._dark._open(replace(spec, dark=False))
        user_context = (await self.session.send("browser.createUserContext", {}))["userContext"]
        created = await self.session.send(
            "browsingContext.create", {"type": "tab", "userContext": user_context}
        )
        if spec.init_script:
            await self.session.send(
                "script.addPreloadScript",
                {
                    "functionDeclaration": f"() => {{ {spec.init_script} }}",
                    "userContexts": [user_context],
                },
            )
        tab = BidiTab(self.session, created["context"])
        await tab.set_viewport(spec.width, spec.height)
        contexts = [created["context"]]
        if spec.timezone:
            await self.session.send(
                "emulation.setTimezoneOverride", {"timezone": spec.timezone, "contexts": contexts}
            )
        if spec.locale:
            await self.session.send(
                "emulation.setLocaleOverride", {"locale": spec.locale, "contexts": contexts}
            )
        return tab


@asynccontextmanager
async def chromium(extra_flags: list[str]) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_FLAGS, *extra_flags],
            timeout=30_000,
        )
        try:
            yield ChromiumBrowser(browser)
        finally:
            await browser.close()


_LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://[0-9.:]+)")


@asynccontextmanager
async def firefox(*, dark: bool = False) -> AsyncIterator[Browser]:
    """Firefox ESR over BiDi; ``dark``: its pages prefer a dark colour scheme."""
    with tempfile.TemporaryDirectory(prefix="stagepass-firefox-") as profile:
        chosen = {**FIREFOX_PREFS, **(FIREFOX_DARK if dark else {})}
        prefs = "".join(
            f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in chosen.items()
        )
        await asyncio.to_thread(Path(profile, "user.js").write_text, prefs)
        process = await asyncio.create_subprocess_exec(
            FIREFOX,
            "--headless",
            "--no-remote",
            "--remote-debugging-port=0",
            "--profile",
            profile,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            address = await asyncio.wait_for(_listening(process.stderr), 60)
            drain = asyncio.get_running_loop().create_task(
                _drain(process.stderr), name="firefox-stderr"
            )
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{address}/session", max_msg_size=64 * 1024 * 1024)
                session = BidiSession(ws)
                await session.send("session.new", {"capabilities": {}})
                await session.send("session.subscribe", {"events": ["log.entryAdded"]})
                try:
                    async with contextlib.AsyncExitStack() as twins:
                        yield FirefoxBrowser(session, twins)
                finally:
                    with contextlib.suppress(BidiError, ConnectionError, TimeoutError):
                        await session.send("browser.close", {})
                    await session.close()
            drain.cancel()
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 30)


async def _listening(stream: asyncio.StreamReader) -> str:
    while line := await stream.readline():
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()
    raise BidiError("Firefox exited before it opened WebDriver BiDi")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


MIC_RATE = 48_000


# --- the fixtures (tests/conftest.py offers them to every test) -----------------------------


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    """Ten seconds of 880 Hz, 48 kHz mono s16: Chromium's fake microphone loops it."""
    path = tmp_path / "mic-880.wav"
    samples = array.array(
        "h",
        (
            int(12_000 * math.sin(2 * math.pi * CHROMIUM_MIC_TONE * n / MIC_RATE))
            for n in range(MIC_RATE * 10)
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MIC_RATE)
        out.writeframes(samples.tobytes())
    return path


@pytest.fixture(params=["chromium", "firefox"])
async def any_browser(request: pytest.FixtureRequest, tone_wav: Path) -> AsyncIterator[Browser]:
    """The test once in headless Chromium and once in Firefox ESR (`tests.audio.browsers`)."""
    name: str = request.param
    path = CHROMIUM if name == "chromium" else FIREFOX
    if not await asyncio.to_thread(Path(path).exists):
        pytest.skip(
            f"BROWSER TEST SKIPPED: no {name} at {path}. `make browser` installs Debian's "
            "chromium and firefox-esr; the room page is untested in this browser."
        )
    capture = f"--use-file-for-fake-audio-capture={tone_wav}"
    launch = chromium([capture]) if name == "chromium" else firefox()
    async with launch as browser:
        yield browser
