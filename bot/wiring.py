"""The composition root: builds the core, the HTTP app and every configured package, runs
them in one event loop, and shuts them down in order.

This module and the CLI are the only ones that know every package.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI

from adapters.shell.chat import Chat
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.notices import Notices
from bot.settings import Settings
from bot.tokens import load_api_token

log = structlog.get_logger(__name__)

#: The database driver (aiosqlite) runs each query on a thread of its own, which waits for
#: the GIL up to the switch interval (5 ms by default) while the event loop is busy: a
#: ticket claim makes several queries. 0.5 ms halved the claim's p99 under a flood of bad
#: requests (bench/hostile.py).
SWITCH_INTERVAL_SECONDS = 0.0005


@dataclass
class Stagepass:
    """Everything that runs in `stagepass run`."""

    settings: Settings
    core: Core
    dispatcher: Dispatcher
    chat: Chat
    routers: list[APIRouter] = field(default_factory=list)
    background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )
    modes: list[str] = field(default_factory=list)
    #: the audio package's room registry once it is installed (the Discord bridge joins it)
    rooms: Any = None

    @classmethod
    async def build(
        cls, settings: Settings, *, migrate: bool = True, install: bool = True
    ) -> Stagepass:
        """The app with every configured package installed (`install=False`: the core
        only, for tests that install one package themselves)."""
        core = Core.build(settings)
        if migrate:
            await core.db.migrate(cipher=lambda: core.cipher)
        Notices(core)
        dispatcher = Dispatcher(core)
        chat = Chat(core, dispatcher)
        app = cls(settings, core, dispatcher, chat)
        app.modes.append("shell")
        for installer in _installers() if install else ():
            await installer(app)
        return app

    async def close(self) -> None:
        await self.core.close()

    def http_app(self) -> FastAPI:
        from bot.http.app import create_app

        token = load_api_token(
            self.settings.api_token.get_secret_value() if self.settings.api_token else None,
            self.settings.data_dir,
        )
        return create_app(self.core, api_token=token, routers=self.routers,
                          metrics_route=self.settings.metrics_bind is None)

    async def run(
        self, *, foreground: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """Serve until SIGINT/SIGTERM (or until `foreground` returns), then stop cleanly:
        stop taking requests, finish in-flight work, close the database."""
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        from bot.http.app import metrics_app
        from bot.http.server import server as http_server

        app = self.http_app()
        servers = [http_server(app, self.settings, host=self.settings.http_host,
                               port=self.settings.http_port)]
        if (metrics_bind := self.settings.metrics_bind) is not None:
            host, port = metrics_bind
            servers.append(http_server(metrics_app(app.state.metrics), self.settings,
                                       host=host, port=port))
        tasks = [asyncio.create_task(s.serve(), name=f"http-{i}") for i, s in enumerate(servers)]
        serving = list(tasks)
        tasks += [
            asyncio.create_task(job(stop), name=getattr(job, "__name__", "background"))
            for job in self.background
        ]
        # DMs a crash or a platform's refusal left unsent, for the platforms installed above
        tasks.append(asyncio.create_task(self.core.outbox.sweep_periodically(stop), name="outbox"))
        while not all(s.started for s in servers):
            if any(task.done() for task in serving):
                await asyncio.gather(*serving)
                raise RuntimeError("an HTTP server stopped during start-up")
            await asyncio.sleep(0.02)
        app.state.ready = True
        url = self.settings.resolved_public_url
        log.info(
            "Stagepass ready",
            url=url,
            modes=",".join(self.modes),
            database=self.core.db.engine.url.get_backend_name(),
        )
        print(f"Stagepass is ready at {url} ({', '.join(self.modes)})", flush=True)
        if foreground is not None:
            fg = asyncio.create_task(foreground(stop), name="foreground")
            fg.add_done_callback(lambda _: stop.set())
            tasks.append(fg)
        await stop.wait()
        log.info("Stagepass stopping")
        app.state.ready = False  # /healthz fails first, so load balancers drain us
        for s in servers:
            s.should_exit = True
        done, pending = await asyncio.wait(tasks, timeout=15)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("task failed", task=task.get_name(), exc_info=task.exception())
        await self.close()
        log.info("Stagepass stopped")


Installer = Callable[["Stagepass"], Coroutine[Any, Any, None]]


def _installers() -> list[Installer]:
    """Each outer package's `install(stagepass)`: it adds its routers, background jobs,
    command handlers and event subscribers to the app, or does nothing when its settings
    say it is off. The order matters: billing before the scheduler, adapters last."""
    import audio
    import billing
    import scheduler
    from adapters import discord, slack

    return [billing.install, scheduler.install, audio.install, discord.install, slack.install]


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Stagepass]:
    """Build, yield and close: for the CLI's one-shot commands and the tests."""
    app = await Stagepass.build(settings)
    try:
        yield app
    finally:
        await app.close()
