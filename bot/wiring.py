"""The composition root: builds the core and the HTTP app, installs every package found
(`bot.host`: entry points, ordered by what each needs), runs them in one event loop, and
shuts them down in order. It names no package: each plugs itself in through the `Host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from fastapi import APIRouter, FastAPI

from bot.clock import Clock
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.errors import ConfigError
from bot.host import Background, Package, discover_packages
from bot.notices import EventMessenger
from bot.settings import Settings
from bot.tokens import load_api_token

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: The database driver (aiosqlite) runs each query on a thread of its own, which waits for
#: the GIL up to the switch interval (5 ms by default) while the event loop is busy: a
#: ticket claim makes several queries. 0.5 ms halved the claim's p99 under a flood of bad
#: requests (bench/hostile.py).
SWITCH_INTERVAL_SECONDS = 0.0005


@dataclass
class Stagepass:
    """Everything that runs in `stagepass run`; the `bot.host.Host` packages install into."""

    settings: Settings
    core: Core
    dispatcher: Dispatcher
    routers: list[APIRouter] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    services: dict[str, object] = field(default_factory=dict)
    installed: list[str] = field(default_factory=list)
    """The packages installed, in order."""

    @classmethod
    async def build(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        install: bool = True,
        packages: Iterable[Package] | None = None,
        clock: Clock | None = None,
    ) -> Stagepass:
        """The app with every package installed: `packages` in their given order, or else
        every one the entry points declare (`install=False`: the core only, for tests that
        install one package themselves). A package whose settings say it is off installs
        nothing. `clock` is the system clock unless a test passes its own."""
        core = Core.build(settings, clock=clock)
        if migrate:
            await core.db.migrate(cipher=lambda: core.cipher)
        EventMessenger(core)
        app = cls(settings, core, Dispatcher(core))
        if install:
            for package in discover_packages() if packages is None else packages:
                await package.install(app)
                app.installed.append(package.name)
        return app

    # --- bot.host.Host -------------------------------------------------------------------

    def add_router(self, router: APIRouter) -> None:
        self.routers.append(router)

    def add_background(self, job: Background) -> None:
        self.background.append(job)

    def add_mode(self, mode: str) -> None:
        self.modes.append(mode)

    def provide(self, name: str, service: object) -> None:
        if name in self.services:
            raise ConfigError(f"two packages offer the service {name!r}")
        self.services[name] = service

    def service(self, name: str, kind: type[T]) -> T | None:
        found = self.services.get(name)
        if found is None or isinstance(found, kind):
            return found
        raise ConfigError(
            f"the service {name!r} is a {type(found).__name__}, not a {kind.__name__}"
        )

    async def close(self) -> None:
        await self.core.close()

    def http_app(self) -> FastAPI:
        from bot.http.app import create_app

        token = load_api_token(
            self.settings.api_token.get_secret_value() if self.settings.api_token else None,
            self.settings.data_dir,
        )
        return create_app(
            self.core,
            api_token=token,
            routers=self.routers,
            metrics_route=self.settings.metrics_bind is None,
        )

    async def run(
        self, *, foreground: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """Serve until SIGINT/SIGTERM (or until `foreground` returns), then stop cleanly:
        stop taking requests, finish in-flight work, close the database."""
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        stop = asyncio.Event()
        forced = asyncio.Event()  # a second Ctrl-C: stop waiting for tasks to finish

        def signalled(sig: signal.Signals) -> None:
            if stop.is_set():
                forced.set()
                return
            stop.set()
            if sig is signal.SIGINT:  # someone at a terminal: say what a second one does
                print("\nStopping… (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, signalled, sig)
        from bot.http.app import metrics_app
        from bot.http.server import server as http_server

        app = self.http_app()
        servers = [
            http_server(
                app, self.settings, host=self.settings.http_host, port=self.settings.http_port
            )
        ]
        if (metrics_bind := self.settings.metrics_bind) is not None:
            host, port = metrics_bind
            servers.append(
                http_server(metrics_app(app.state.metrics), self.settings, host=host, port=port)
            )
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
        finishing = asyncio.create_task(asyncio.wait(tasks), name="finishing")
        forcing = asyncio.create_task(forced.wait(), name="forcing")
        await asyncio.wait({finishing, forcing}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        finishing.cancel()
        forcing.cancel()
        await asyncio.gather(finishing, forcing, return_exceptions=True)
        done = [task for task in tasks if task.done()]
        pending = [task for task in tasks if not task.done()]
        if pending:
            log.warning(
                "Stagepass stopping now" if forced.is_set() else "Stagepass stop timed out",
                cancelled=",".join(task.get_name() for task in pending),
            )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("task failed", task=task.get_name(), exc_info=task.exception())
        await self.close()
        log.info("Stagepass stopped")


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Stagepass]:
    """Build, yield and close: for the CLI's one-shot commands and the tests."""
    app = await Stagepass.build(settings)
    try:
        yield app
    finally:
        await app.close()
