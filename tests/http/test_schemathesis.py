"""Schemathesis against the whole app as `stagepass run` serves it, over real HTTP: for
every documented operation, generated requests (valid and not) get no 5xx, and every
answer is a documented status with a body and content type that match the document.

The server runs in a thread of its own (its own event loop, database and core), so the
synchronous schemathesis calls cannot block it. Examples are bounded per operation."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.http.server import server
from bot.settings import Settings, load_settings
from bot.wiring import Stagepass
from tests.http.conftest import TOKEN, person
from tests.waiting import eventually

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

#: Per operation; enough to cover each body's shapes and every parameter's edges.
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_SCRUBBED = (
    "DATABASE_URL",
    "STAGEPASS_DATA_DIR",
    "STRIPE_SECRET_KEY",
    "DISCORD_TOKEN",
    "SLACK_BOT_TOKEN",
    "STAGEPASS_API_TOKEN",
    "STAGEPASS_SIGNING_KEY",
)


class LiveServer(threading.Thread):
    """Stagepass (billing in TEST MODE, audio, Slack over HTTP) on 127.0.0.1 until stopped."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="stagepass-live", daemon=True)
        self.settings = settings
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test by `start_and_wait`
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        stagepass = await Stagepass.build(self.settings)
        try:
            app = stagepass.http_app()
            app.state.ready = True
            served = server(app, self.settings, host="127.0.0.1", port=0)
            task = asyncio.create_task(served.serve(sockets=[self.sock]), name="uvicorn")
            await eventually(lambda: served.started or task.done(), what="uvicorn started")
            if task.done():
                await task
            self.ready.set()
            await self._stopping.wait()
            served.should_exit = True
            await task
        finally:
            await stagepass.close()

    def start_and_wait(self) -> None:
        self.start()
        assert self.ready.wait(60), "the live server did not start"
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(30)
        self.sock.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("live") / "data"
    with pytest.MonkeyPatch.context() as patch:
        for key in _SCRUBBED:
            patch.delenv(key, raising=False)
        settings = load_settings(
            data_dir=data,
            api_token=TOKEN,
            http_port=0,
            public_url="http://stagepass.test",
            slack_bot_token="xoxb-test",
            slack_signing_secret="s" * 32,
        )
    running = LiveServer(settings)
    running.start_and_wait()
    with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        starts = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        created = http.post(
            "/api/v1/spaces",
            json={
                "host": person("alice"),
                "title": "Seeded",
                "starts_at": starts,
                "price_minor": 0,
                "currency": "usd",
                "capacity": 50,
            },
        )
        assert created.status_code == 201, created.text  # Space #1: GETs find something
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_the_api_keeps_to_its_document(live: LiveServer, mode: GenerationMode) -> None:
    """Every operation in turn (schemathesis's pytest loader does not run on pytest 9.2,
    so the operations are walked here); every failure is reported, not only the first."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    results = list(schema.get_all_operations())
    assert not [r.err() for r in results if isinstance(r, Err)]
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 10
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # no input to get wrong (GET /healthz)
        except Exception as exc:  # collected: one report for every operation that failed
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
