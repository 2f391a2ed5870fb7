"""The host's desk in a real browser, in Chromium and in Firefox ESR (`tests.audio.browsers`):
it opens the link `/space manage` sends, refunds one ticket with its button, and sees it
refunded. Screenshots (desktop light and dark, mobile) go to tests/artifacts/{browser}/.

The app is the real one, served by uvicorn on 127.0.0.1 in the test's own loop.
"""

from __future__ import annotations

import httpx
import pytest

from adapters.shell.chat import Chat
from bot.core import Core
from tests.audio.browsers import Browser, click, dark_and_mobile, opened, shot, text_of, wait_for
from tests.fakes.payments import StubPayments
from tests.http.test_desk import _identity, desk_path, ok, paid_space

pytestmark = [pytest.mark.browser]


async def test_the_host_refunds_a_ticket(
    chat: Chat, core: Core, served: str, any_browser: Browser
) -> None:
    payments = StubPayments()
    space_id = await paid_space(chat, core, payments)
    bob = (await core.tickets.tickets_of((await _identity(core, "bob")).id or 0))[0]
    url = served + desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
    row = f"#row-{bob.id}"
    page = await opened(any_browser, url, ready=row, width=1100, height=900)
    await shot(page, "desk-light")

    await click(page, f"button[aria-label='Refund ticket {bob.id}']")
    notice = await wait_for(page, "(document.querySelector('#notice') || {}).textContent")
    assert notice.strip() == f"Ticket {bob.id} is refunded."
    assert await text_of(page, f"{row} .st") == "refunded"
    assert payments.refunded == [bob.id]
    await shot(page, "desk-refunded")

    others = await dark_and_mobile(any_browser, url, "desk", ready=row, width=1100, height=900)
    for tab in (page, *others):
        assert tab.errors == []  # no script error, no CSP violation
    async with httpx.AsyncClient(base_url=served) as client:  # a fresh link over real HTTP
        fresh = desk_path(await ok(chat, "alice", f"/space manage {space_id}"))
        assert (await client.get(fresh)).status_code == 200
