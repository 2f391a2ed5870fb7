"""`stagepass billing reconcile [--since]`: repairs and prints what it changed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from billing.assembly import Billing
from billing.cli import app as billing_app
from billing.cli import parse_span
from bot.actors import Actor
from bot.core import Core
from bot.models import Platform
from bot.services.spaces import SpaceDraft
from bot.settings import load_settings


def cli() -> typer.Typer:
    """The CLI as `bot.cli` mounts it."""
    root = typer.Typer()
    root.add_typer(billing_app, name="billing")

    @root.command()
    def version() -> None:  # a second command, so `billing` stays a sub-command
        pass

    return root


async def paid_but_not_delivered(data_dir: Path) -> None:
    """A TEST MODE payment whose event never reached the webhook."""
    core = Core.build(load_settings(data_dir=data_dir))
    await core.db.migrate()
    billing = Billing.build(core)
    core.use_payments(billing.gateway)
    host = Actor(Platform.SHELL, "local", "alice", "alice")
    space = await core.spaces.create(
        host,
        SpaceDraft(
            title="Late show",
            starts_at=core.clock.now() + timedelta(days=2),
            capacity=3,
            price_minor=900,
        ),
    )
    assert space.id is not None
    reservation = await core.tickets.reserve(Actor(Platform.SHELL, "local", "bob", "bob"), space.id)
    assert reservation.checkout is not None and billing.dev is not None
    await billing.dev.pay(reservation.checkout.url.rsplit("/", 1)[1])
    await billing.aclose()
    await core.close()


def test_reconcile_prints_what_it_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STAGEPASS_DATA_DIR", str(tmp_path / "data"))
    asyncio.run(paid_but_not_delivered(tmp_path / "data"))

    first = CliRunner().invoke(cli(), ["billing", "reconcile", "--since", "2h"])
    assert first.exit_code == 0, first.output
    assert "Reconciled with Stripe since" in first.output
    assert "changed: issued 1 ticket(s) for hold" in first.output

    second = CliRunner().invoke(cli(), ["billing", "reconcile"])
    assert second.exit_code == 0, second.output
    assert "nothing to repair." in second.output

    bad = CliRunner().invoke(cli(), ["billing", "reconcile", "--since", "yesterday"])
    assert bad.exit_code == 2 and "90m, 24h, 3d or 1w" in bad.output


def test_parse_span() -> None:
    assert parse_span("90m") == timedelta(minutes=90)
    assert parse_span(" 3D ") == timedelta(days=3)
    assert parse_span("1w") == timedelta(weeks=1)
