"""Stage controls with two real pages, in Chromium and in Firefox: a listener raises a hand,
the host's page shows it live and promotes, the listener's page becomes a speaker's and its
(fake) microphone is mixed into the room; the host ends the Space from the page. Screenshots
(desktop and phone) go to tests/artifacts/{browser}/."""

from __future__ import annotations

import json

import pytest

from tests.audio.browsers import (
    Browser,
    Tab,
    click,
    shot,
    wait_for,
)
from tests.audio.conftest import HOST, World

pytestmark = [pytest.mark.browser]

PHONE = (380, 800)
SENT = """(async () => {
  let sent = 0;
  for (const pc of window.__pcs) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "audio") { sent += s.packetsSent; }
    });
  }
  return sent;
})()"""
CAPTURE_PEERS = """
window.__pcs = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Native {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""


def selector(css: str) -> str:
    return f"document.querySelector({json.dumps(css)})"


def text(css: str) -> str:
    return f"({selector(css)} || {{}}).textContent || ''"


async def state(tab: Tab, name: str, within: float = 30.0) -> None:
    await wait_for(
        tab, f"{selector('#room')}.dataset.state === {json.dumps(name)}", within=within, what=name
    )


async def test_a_raised_hand_is_promoted_from_the_hosts_page(
    scheduled: World, base_url: str, any_browser: Browser
) -> None:
    world = scheduled
    await world.start()
    ann = await world.ticket("ann")
    room = f"{base_url}/rooms/{world.space_id}"

    host = await any_browser.tab(init_script=CAPTURE_PEERS)
    await host.goto(f"{room}#token={world.host.token}")
    await state(host, "live")
    await wait_for(host, f"!{selector('#stage-controls')}.hidden", what="the stage controls")
    assert "Host" in await host.evaluate(text("#you-line"))
    listener = await any_browser.tab(init_script=CAPTURE_PEERS)
    await listener.goto(f"{room}#token={ann.token}")
    await state(listener, "live")
    assert await listener.evaluate(f"{selector('#stage-controls')}.hidden") is True
    assert await listener.evaluate(f"{selector('#btn-mic')}.hidden") is True

    # -- the listener raises a hand; the host's page shows it without a reload --------------
    await click(listener, "#btn-hand")
    await wait_for(listener, f"{selector('#btn-hand')}.getAttribute('aria-pressed') === 'true'")
    hand = f'#hand-queue li[data-key="{ann.key}"]'
    await wait_for(host, f"!!{selector(hand)}", what="Ann's hand on the host's page")
    assert "Ann" in await host.evaluate(text(hand))
    assert await host.evaluate(text("#hand-count")) == "1"
    await shot(host, "room-host-hand-raised")
    await shot(listener, "room-listener-hand-raised")

    # -- the host promotes; the listener's page turns into a speaker's, and is heard --------
    sent_before = await listener.evaluate(SENT)
    await click(host, f'{hand} button[data-action="promote"]')
    await wait_for(listener, f"!{selector('#btn-mic')}.hidden", what="the speaker's mic button")
    await wait_for(listener, f"({text('#you-line')}).includes('Speaker')")
    await wait_for(
        listener,
        f"(await {SENT}) > {sent_before + 20}",
        what="the promoted page sending its microphone",
    )
    await wait_for(
        host,
        "[...document.querySelectorAll('#stage li.speaking')]"
        ".some((li) => li.textContent.includes('Ann'))",
        what="the host's page showing Ann talking (her microphone mixed)",
    )
    assert (await world.core.stage.state(world.space_id)).queue == []
    await wait_for(host, f"({text('#speaker-list')}).includes('Ann')")
    await shot(host, "room-host-stage-controls")
    await shot(listener, "room-listener-promoted")
    await host.set_viewport(*PHONE)
    await listener.set_viewport(*PHONE)
    await shot(host, "room-host-stage-controls-phone")
    await shot(listener, "room-listener-promoted-phone")

    # -- mute from the host's page; the listener's page says so ------------------------------
    await click(host, f'#speaker-list li[data-key="{ann.key}"] button[data-action="mute"]')
    await wait_for(listener, f"({text('#you-line')}).includes('muted by a moderator')")

    # -- the host ends the Space from the page (the button asks twice) -----------------------
    await click(host, "#btn-end")
    await wait_for(host, f"({text('#btn-end')}).includes('Press again')")
    await click(host, "#btn-end")
    await state(host, "ended")
    await state(listener, "ended")
    space = await world.core.spaces.get(world.space_id)
    assert space.status.value == "ended"


async def test_the_desk_and_the_public_page_on_desktop_and_phone(
    scheduled: World, base_url: str, any_browser: Browser
) -> None:
    world = scheduled
    await world.start()
    ann = await world.ticket("ann")
    listener = await world.join(ann)
    await world.core.host_desk.record_listeners(world.space_id, 1)
    token = await world.core.host_desk.link_token(HOST, world.space_id)
    desk = await any_browser.tab(width=1100, height=900)
    await desk.goto(f"{base_url}/spaces/{world.space_id}/manage?token={token}")
    await wait_for(desk, f"!!{selector('#listeners-chart svg')}", what="the listeners chart")
    assert "Night radio" in await desk.evaluate("document.title")
    public = await any_browser.tab(width=1100, height=900)
    await public.goto(f"{base_url}/spaces/{world.space_id}")
    assert "Night radio" in await public.evaluate("document.body.textContent")
    for tab, name in ((desk, "desk"), (public, "public-page")):
        await shot(tab, name)
        await tab.set_viewport(*PHONE)
        await shot(tab, f"{name}-phone")
        overflow = await tab.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name} scrolls sideways on a phone by {overflow}px"
    await listener.close()


async def test_the_room_in_dark_mode(scheduled: World, base_url: str, any_browser: Browser) -> None:
    """The room page when the system prefers dark: waiting, then live for a listener and
    for the host with the stage controls, on desktop and phone."""
    world = scheduled
    ann = await world.ticket("ann")
    room = f"{base_url}/rooms/{world.space_id}"
    listener = await any_browser.tab(dark=True)
    await listener.goto(f"{room}#token={ann.token}")
    await state(listener, "waiting")
    assert await listener.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is True
    await shot(listener, "room-dark-waiting")

    await world.start()
    await state(listener, "live")
    host = await any_browser.tab(dark=True, width=1100, height=900)
    await host.goto(f"{room}#token={world.host.token}")
    await state(host, "live")
    await wait_for(host, f"!{selector('#stage-controls')}.hidden", what="the stage controls")
    await click(listener, "#btn-hand")
    hand = f'#hand-queue li[data-key="{ann.key}"]'
    await wait_for(host, f"!!{selector(hand)}", what="Ann's hand on the host's page")
    await shot(listener, "room-dark-listener")
    await shot(host, "room-dark-host")
    for tab in (host, listener):
        await tab.set_viewport(*PHONE)
    await shot(host, "room-dark-host-phone")
    await shot(listener, "room-dark-listener-phone")
    background = await host.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 255, 255)", background
    assert host.errors == [] and listener.errors == []
