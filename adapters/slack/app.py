"""The Slack adapter assembled: Bolt's `AsyncApp` with our listeners, the HTTP routes it
answers on, the core-event subscribers, and the background job that owns its work.

    /slack/events          POST  commands, interactivity and events (signed by Slack)
    /slack/install         GET   start the OAuth install (many-workspace mode)
    /slack/oauth_redirect  GET   finish it: the bot token goes into the database

`/slack/events` checks the signature over the raw bytes first (401 when it is missing,
wrong, or more than five minutes old: adapters/slack/signatures.py), then the body's
shape (400 when a signed body is not one of Slack's payloads: adapters/slack/payloads.py);
only then does Bolt see the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from slack_bolt.adapter.starlette.async_handler import (
    AsyncSlackRequestHandler,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings

from adapters.slack.announcements import Announcements
from adapters.slack.clients import WebClients
from adapters.slack.config import (
    EVENTS_PATH,
    INSTALL_PATH,
    MAX_BODY_BYTES,
    REDIRECT_PATH,
    SlackConfig,
)
from adapters.slack.home import Home
from adapters.slack.installations import InstallationStore, StateStore
from adapters.slack.interactions import Interactions
from adapters.slack.notifier import Notifier
from adapters.slack.payloads import Malformed, read
from adapters.slack.people import Directory
from adapters.slack.signatures import Signatures, Unsigned
from bot.coalescing import Coalescer
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.tasks import TaskGroup

log = structlog.get_logger(__name__)

Authorize = Callable[..., Awaitable[AuthorizeResult]]

#: What the bot may do; the manifest (adapters/slack/manifest.yml) asks for the same.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "users:read",
    "users:read.email",
    "usergroups:read",
)
#: Asked for only in the OAuth install, where the installer picks the announcement channel.
INSTALL_SCOPES = (*BOT_SCOPES, "incoming-webhook")


class SlackAdapter:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        config: SlackConfig,
        *,
        ack_budget: float = 2.0,
    ) -> None:
        self.core = core
        self.config = config
        self.tasks = TaskGroup("slack", failed="slack task failed")
        coalescer = Coalescer("slack", failed="slack update failed")
        self.store = (
            InstallationStore(core.db, core.clock, cipher=core.cipher)
            if config.multi_workspace
            else None
        )
        self.clients = WebClients(config, self.store)
        self.directory = Directory(
            config.moderator_group,
            roles=any(rule.strip().startswith("role:") for rule in core.settings.host_rules),
        )
        self.home = Home(core, self.clients, coalescer)
        self.announcements = Announcements(core, self.clients, coalescer)
        core.announcements.register(self.announcements.link)
        self.bolt = self._bolt_app()
        self.interactions = Interactions(
            core,
            dispatcher,
            self.directory,
            self.home,
            self.tasks,
            self.announcements,
            store=self.store,
            ack_budget=ack_budget,
        )
        self.interactions.register(self.bolt)
        self.bolt.error(self._on_error)
        Notifier(core, self.clients, self.announcements, self.home, self.directory).subscribe(
            core.bus
        )
        self.handler = AsyncSlackRequestHandler(self.bolt)
        self.signatures = Signatures(config.signing_secret or "")

    def _bolt_app(self) -> AsyncApp:
        config = self.config
        logger = logging.getLogger("adapters.slack.bolt")
        signing_secret = config.signing_secret or ""  # Socket Mode only: no HTTP route
        if self.store is None:
            return AsyncApp(
                client=self.clients.client(config.bot_token),
                signing_secret=signing_secret,
                request_verification_enabled=False,  # `events` checks it first
                process_before_response=True,
                logger=logger,
                name="stagepass",
            )
        assert config.client_id and config.client_secret and config.state_secret
        base = self.clients.client()
        return AsyncApp(
            client=base,
            signing_secret=signing_secret,
            request_verification_enabled=False,  # `events` checks it first
            process_before_response=True,
            logger=logger,
            name="stagepass",
            installation_store=self.store,
            installation_store_bot_only=True,
            # Bolt takes an `AsyncAuthorize` here (checked at run time); its annotation
            # only names plain functions.
            authorize=cast(
                Authorize,
                AsyncInstallationStoreAuthorize(
                    installation_store=self.store,
                    client_id=config.client_id,
                    client_secret=config.client_secret,
                    logger=logger,
                    bot_only=True,
                    cache_enabled=True,  # auth.test once per token, not per request
                    client=base,
                ),
            ),
            oauth_settings=AsyncOAuthSettings(
                client_id=config.client_id,
                client_secret=config.client_secret,
                scopes=list(INSTALL_SCOPES),
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                redirect_uri=config.public_url + REDIRECT_PATH,
                installation_store=self.store,
                installation_store_bot_only=True,
                state_store=StateStore(self.core.db, self.core.clock, secret=config.state_secret),
                logger=logger,
            ),
        )

    async def _on_error(self, error: Exception, body: dict[str, object]) -> None:
        log.error("slack listener failed", kind=body.get("type"), exc_info=error)

    async def events(self, request: Request) -> Response:
        """`POST /slack/events`: signature over the raw bytes, then the body's shape,
        then Bolt."""
        body = await request.body()
        try:
            self.signatures.check(request.headers, body)
        except Unsigned as refused:
            log.info("slack: unsigned request refused", reason=refused.reason)
            return PlainTextResponse("Not signed by Slack.", status_code=401)
        try:
            read(body, request.headers.get("content-type"))
        except Malformed as bad:
            log.warning("slack: malformed signed request refused", reason=str(bad))
            return PlainTextResponse(f"Malformed Slack request: {bad}.", status_code=400)
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8"),
            query=request.query_params,  # type: ignore[arg-type]  # Bolt reads it as a map
            headers=request.headers,  # type: ignore[arg-type]  # Bolt reads it as a map
        )
        return to_starlette_response(await self.bolt.async_dispatch(bolt_request))

    def router(self) -> APIRouter:
        router = APIRouter(tags=["slack"], include_in_schema=False, max_body_size=MAX_BODY_BYTES)
        handler = self.handler

        async def handle(request: Request) -> Response:
            return await handler.handle(request)

        if self.config.http_events:
            router.add_api_route(EVENTS_PATH, self.events, methods=["POST"])
        if self.config.multi_workspace:
            router.add_api_route(INSTALL_PATH, handle, methods=["GET"])
            router.add_api_route(REDIRECT_PATH, handle, methods=["GET"])
        return router

    async def run(self, stop: asyncio.Event) -> None:
        """The background job: Socket Mode when configured; on `stop`, finish the work
        in flight (and cancel what is still running after ten seconds)."""
        await self.core.db.warm()  # the first command does not configure the ORM
        socket = None
        if self.config.app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket = cast(Any, AsyncSocketModeHandler(self.bolt, self.config.app_token))
            await socket.connect_async()
            log.info("slack: connected in Socket Mode")
        try:
            await stop.wait()
        finally:
            if socket is not None:
                await socket.close_async()
            await self.tasks.close(grace=10)
            if self.store is not None:
                await self.store.close()

    async def settle(self) -> None:
        """Wait until the adapter and the event bus have nothing left to do (tests)."""
        while True:
            await self.tasks.idle()
            await self.core.bus.drain()
            if not self.tasks.busy:  # nothing awaited since the bus went idle: all done
                return
