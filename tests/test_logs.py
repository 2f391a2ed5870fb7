"""Secrets never reach the log: an error in the real HTTP app, rendered by the console
renderer as on a terminal, shows no frame locals and no configured or learned secret,
not even a 16-character slice of one."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, Depends, Request
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bot.clock import ManualClock
from bot.core import Core
from bot.db import Database
from bot.http import create_app
from bot.http.dependencies import BearerAuth
from bot.logs import Redactor, add_secrets, configure
from bot.settings import Settings
from tests.conftest import leaks

OPERATOR_TOKEN = "op-Zq8Xv2Lr5Tn1Wc7Yb4Kd9Hf3Jm6Ps0Ga"
SLACK_TOKEN = "xoxb-2718281828-3141592653-QwErTyUiOpAsDfGhJkLzXcVb"
STRIPE_KEY = "sk_test_51NotARealKeyButLongEnough0123456789"
LEARNED = "xoxb-9999999999-8888888888-LearnedAtRuntimeToken01"
LOCAL_MARKER = "a-local-variable-nobody-should-see"


@pytest.fixture
def secret_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_token": SecretStr(OPERATOR_TOKEN),
            "slack_bot_token": SecretStr(SLACK_TOKEN),
            "stripe_secret_key": SecretStr(STRIPE_KEY),
        }
    )


def failing_router(token: str) -> APIRouter:
    """A route that fails the way a Slack call does: the Authorization header it built
    is in its locals and in the error's text."""
    router = APIRouter(dependencies=[Depends(BearerAuth(token))])

    @router.get("/api/v1/boom")
    async def boom(request: Request) -> None:
        marker = LOCAL_MARKER  # shown only if a traceback prints frame locals
        headers = {"Authorization": f"Bearer {SLACK_TOKEN}"}
        credentials = request.headers["authorization"]
        raise RuntimeError(
            f"Slack said invalid_auth for {headers} (caller: {credentials})" + marker[:0]
        )

    return router


async def test_a_forced_error_logs_no_secret_and_no_locals(
    secret_settings: Settings,
    sqlite_db: Database,
    clock: ManualClock,
    log_output: io.StringIO,
) -> None:
    configure(
        "info", "console", secrets=secret_settings.secret_values(), colors=True, stream=log_output
    )
    core = Core.build(secret_settings, db=sqlite_db, clock=clock)
    app = create_app(
        core,
        api_token=OPERATOR_TOKEN,
        routers=[failing_router(OPERATOR_TOKEN)],
        registry=CollectorRegistry(),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://stagepass.test",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    ) as client:
        response = await client.get("/api/v1/boom")
    assert response.status_code == 500
    text = log_output.getvalue()
    assert "unhandled error in HTTP request" in text
    assert "Traceback (most recent call last)" in text and "RuntimeError" in text
    assert "[redacted]" in text  # the error's own text was there, masked
    assert LOCAL_MARKER not in text  # no frame locals
    assert leaks(text, OPERATOR_TOKEN, SLACK_TOKEN, STRIPE_KEY) == set()


def test_any_field_nested_values_and_learned_secrets_are_masked(
    secret_settings: Settings, log_output: io.StringIO
) -> None:
    configure("info", "json", secrets=secret_settings.secret_values(), stream=log_output)
    add_secrets(LEARNED)
    log = structlog.get_logger("test")
    log.warning(
        f"calling with {SLACK_TOKEN}",
        request={"headers": [("authorization", f"Bearer {LEARNED}")]},
        body=f"...{STRIPE_KEY[5:30]}...",  # a slice, as a truncated repr would leave it
    )
    logging.getLogger("slack_sdk").warning("sent %s", {"token": OPERATOR_TOKEN})
    text = log_output.getvalue()
    assert text.count("[redacted]") >= 4
    assert leaks(text, OPERATOR_TOKEN, SLACK_TOKEN, STRIPE_KEY, LEARNED) == set()


def test_settings_list_every_configured_secret(tmp_path: Path, settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "api_token": SecretStr(OPERATOR_TOKEN),
            "stripe_webhook_secret": SecretStr("whsec_old_one_123456,whsec_new_one_654321"),
            "database_url": "postgresql://stagepass:db-password-42@db.internal/stagepass",
        }
    )
    values = configured.secret_values()
    assert {OPERATOR_TOKEN, "whsec_old_one_123456", "whsec_new_one_654321"} <= values
    assert "db-password-42" in values


def test_masking_joins_overlapping_slices() -> None:
    masks = Redactor()
    masks.add([SLACK_TOKEN, "short-pw", None, "tiny"])
    assert masks.mask(f"a {SLACK_TOKEN} b") == "a [redacted] b"
    assert masks.mask("pw=short-pw, tiny stays") == "pw=[redacted], tiny stays"
    cut = SLACK_TOKEN[:30] + "\n" + SLACK_TOKEN[30:]  # wrapped by a narrow terminal
    assert leaks(masks.mask(cut), SLACK_TOKEN) == set()
    sample: dict[str, Any] = {"n": 3, "items": (SLACK_TOKEN, 1)}
    assert masks.scrub(sample) == {"n": 3, "items": ("[redacted]", 1)}
