"""`billing.install(stagepass)`: what the wiring gets, and `stagepass run`'s start-up line."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from adapters.shell.chat import Chat
from adapters.shell.package import package as shell
from billing import MODE_TEST, attach, install
from billing.gateway import StripeGateway
from billing.reconcile import Report
from bot.settings import Settings
from bot.wiring import Stagepass
from tests.waiting import PATIENCE


async def test_install_plugs_billing_into_the_app(settings: Settings) -> None:
    stagepass = await Stagepass.build(settings, packages=[shell])
    try:
        await install(stagepass)
        assert stagepass.modes == ["shell", MODE_TEST]
        assert isinstance(stagepass.core.payments, StripeGateway)
        assert stagepass.core.tickets.payments is stagepass.core.payments
        assert [job.__name__ for job in stagepass.background] == ["reconcile_periodically"]
        paths = {route.path for router in stagepass.routers for route in router.routes}  # type: ignore[attr-defined]  # APIRoutes, typed as BaseRoute
        assert {
            "/webhooks/stripe",
            "/billing/checkout/done",
            "/billing/dev/checkout/{session_id}",
        } <= paths

        chat = stagepass.service("chat", Chat)
        assert chat is not None
        reply = await chat.say("alice", "/payouts status")
        assert "TEST MODE" in reply.text  # the handler replaced "not configured"

        app = stagepass.http_app()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://x"
        ) as http:
            assert (await http.get("/billing/checkout/done")).status_code == 200
            assert (await http.post("/webhooks/stripe", content=b"{}")).status_code == 400
    finally:
        await stagepass.close()


async def test_background_job_reconciles_and_stops(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.billing_reconcile_minutes = 5
    stagepass = await Stagepass.build(settings, install=False)
    try:
        billing = await attach(stagepass)
        reconciled = asyncio.Event()
        reconcile = billing.reconcile

        async def noted(since: timedelta | None = None) -> Report:
            report = await reconcile(since)
            reconciled.set()
            return report

        monkeypatch.setattr(billing, "reconcile", noted)
        [job] = stagepass.background
        stop = asyncio.Event()
        task = asyncio.create_task(job(stop), name="billing")
        await asyncio.wait_for(reconciled.wait(), PATIENCE)  # the first one, at start-up
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, PATIENCE)
    finally:
        await stagepass.close()


async def test_run_names_the_billing_mode(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    stagepass = await Stagepass.build(settings, packages=[shell])
    await install(stagepass)

    async def leave(stop: asyncio.Event) -> None:
        return None

    await stagepass.run(foreground=leave)
    ready = [line for line in capsys.readouterr().out.splitlines() if "is ready at" in line]
    assert ready and ready[0].endswith("(shell, billing:TEST MODE (no real payments))")
