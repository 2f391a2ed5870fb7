"""`stagepass tickets verify TOKEN` answers by the core's seat rule: a ticket whose holder
was removed from the stage is reported as removed (exit 1) until `/stage allow`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import cli
from bot.actors import Actor, UserRef
from bot.cli import app
from bot.core import Core
from bot.models import Platform
from bot.services.spaces import SpaceDraft
from bot.settings import load_settings

HOST = Actor(Platform.SHELL, "local", "alice", "alice")
BOB = Actor(Platform.SHELL, "local", "bob", "bob")


async def _stage(data_dir: Path, *, remove: bool) -> str:
    """Bob's ticket token for a live Space; `remove`: the host removes him (else allows
    him back)."""
    core = Core.build(load_settings(data_dir=data_dir))
    try:
        await core.db.migrate()
        spaces = await core.spaces.list_spaces()
        if not spaces:
            space = await core.spaces.create(
                HOST,
                SpaceDraft(
                    title="Late show", starts_at=core.clock.now() + timedelta(days=1), capacity=3
                ),
            )
            assert space.id is not None
            await core.tickets.reserve(BOB, space.id)
            await core.spaces.start(HOST, space.id, confirm=True)
            spaces = [space]
        space_id = spaces[0].id
        assert space_id is not None
        if remove:
            await core.stage.remove(HOST, space_id, UserRef("bob", "bob"))
        else:
            await core.stage.allow(HOST, space_id, UserRef("bob", "bob"))
        bob = await core.identities.ensure(BOB)
        assert bob.id is not None
        [ticket] = await core.tickets.tickets_of(bob.id, space_id)
        return core.tickets.token_for(ticket, await core.spaces.get(space_id))
    finally:
        await core.close()


def test_verify_reports_a_removed_holder_until_allowed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("STRIPE_SECRET_KEY", "DATABASE_URL", "DISCORD_TOKEN", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STAGEPASS_DATA_DIR", str(tmp_path / "data"))
    # the CLI sets logging up for the process (cached structlog loggers, a handler on
    # CliRunner's stream); keep this test's process as the other tests expect it
    monkeypatch.setattr(cli, "configure", lambda *args, **kwargs: None)

    token = asyncio.run(_stage(tmp_path / "data", remove=True))
    removed = CliRunner().invoke(app, ["tickets", "verify", token])
    assert removed.exit_code == 1, removed.output
    assert removed.output.startswith("REMOVED: ticket ")
    assert "was removed from this Space's stage" in removed.output
    assert "/stage allow" in removed.output

    token = asyncio.run(_stage(tmp_path / "data", remove=False))
    valid = CliRunner().invoke(app, ["tickets", "verify", token])
    assert valid.exit_code == 0, valid.output
    assert valid.output.startswith("VALID ticket ") and "role: listener" in valid.output
