"""Settings, signed tickets, money and the event bus: the small pieces everything uses."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from bot.errors import ConfigError, InvalidInput
from bot.events import Event, EventBus
from bot.money import CURRENCIES, format_minor, parse_amount
from bot.settings import load_settings
from bot.tokens import (
    InvalidToken,
    TicketClaims,
    TokenSigner,
    TokenVerifier,
    load_signing_key,
)
from tests.conftest import setting_keys

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_malformed_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEPASS_HTTP_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "STAGEPASS_HTTP_PORT" in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STAGEPASS_HOST_RULES", "followers:600"),
        ("STAGEPASS_DEFAULT_CURRENCY", "doge"),
        ("STAGEPASS_PLATFORM_FEE_PERCENT", "150"),
        ("STAGEPASS_HOLD_MINUTES", "5"),
        ("STAGEPASS_MAX_TITLE_LENGTH", "201"),  # the title column holds 200
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_a_title_limit_longer_than_its_column_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above 200, titles the setting allowed failed in PostgreSQL's title column (a 500)."""
    monkeypatch.setenv("STAGEPASS_MAX_TITLE_LENGTH", "500")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "Setting STAGEPASS_MAX_TITLE_LENGTH: at most 200: a Space's title is stored in 200 "
        "characters (got '500')"
    )
    monkeypatch.setenv("STAGEPASS_MAX_TITLE_LENGTH", "200")
    assert load_settings().max_title_length == 200


def test_cli_stops_with_one_clear_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "STAGEPASS_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "mysql://x",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DATABASE_URL" in lines[0], result.stderr


def _claims(**overrides: object) -> TicketClaims:
    base: dict[str, object] = dict(
        ticket_id="abc",
        space_id=7,
        holder_key="3",
        role="listener",
        expires_at=NOW + timedelta(hours=1),
    )
    base.update(overrides)
    return TicketClaims(**base)  # type: ignore[arg-type]  # a dict of the fields, with overrides


def test_token_round_trip_needs_only_the_public_key() -> None:
    signer = TokenSigner(SigningKey.generate())
    token = signer.sign(_claims())
    edge = TokenVerifier(signer.verifier._key)
    assert edge.verify(token, now=NOW) == _claims()


@pytest.mark.parametrize("mutate", ["other-key", "flip-payload", "flip-sig", "garbage", "expired"])
def test_forged_or_expired_tokens_are_refused(mutate: str) -> None:
    signer = TokenSigner(SigningKey.generate())
    token = signer.sign(_claims())
    body, sig = token.split(".")
    bad = {
        "other-key": TokenSigner(SigningKey.generate()).sign(_claims()),
        "flip-payload": body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig,
        "flip-sig": body + "." + sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1],
        "garbage": "not-a-token",
        "expired": signer.sign(_claims(expires_at=NOW - timedelta(seconds=1))),
    }[mutate]
    with pytest.raises(InvalidToken):
        signer.verifier.verify(bad, now=NOW)


def test_signing_key_is_generated_once_and_private(tmp_path: Path) -> None:
    first = load_signing_key(None, tmp_path)
    second = load_signing_key(None, tmp_path)
    assert bytes(first) == bytes(second)
    assert (tmp_path / "signing.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="STAGEPASS_SIGNING_KEY"):
        load_signing_key("!!", tmp_path)


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("5", "usd", 500),
        ("4.99", "usd", 499),
        ("$5", "usd", 500),
        ("500", "jpy", 500),
        ("0", "eur", 0),
        ("free", "gbp", 0),
        ("1,000", "usd", None),
        ("5.001", "usd", None),
        ("-1", "usd", None),
        ("abc", "usd", None),
    ],
)
def test_amounts_follow_the_currency_exponent(text: str, code: str, minor: int | None) -> None:
    if minor is None:
        with pytest.raises(InvalidInput):
            parse_amount(text, code)
    else:
        assert parse_amount(text, code) == minor


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(CURRENCIES)))
def test_formatting_and_parsing_round_trip(minor: int, code: str) -> None:
    shown = format_minor(minor, code)
    number = shown.replace(",", "").split()[0].lstrip("$€£¥")
    assert parse_amount(number, code) == minor


async def test_a_failing_handler_never_breaks_the_others() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def bad(event: Event) -> None:
        raise RuntimeError("boom")

    async def good(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append("good")

    bus.subscribe(Event, bad)
    bus.subscribe(Event, good)
    bus.publish(Event())
    await bus.drain()
    assert seen == ["good"] and bus.failures == 1


def test_env_example_lists_every_setting_and_no_other() -> None:
    example = (Path(__file__).parents[1] / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert listed == setting_keys()


def test_no_setting_reaches_a_test_from_the_environment() -> None:
    """The root conftest scrubs every key `Settings` reads (the developer's shell may
    hold a real DISCORD_TOKEN or DATABASE_URL)."""
    assert not [key for key in os.environ if key.upper() in setting_keys()]
