"""What people do in Slack -> the core, answered within Slack's 3 seconds.

The adapter's shape (slack-bolt's own): a Slack request in, the core's request out
(`Actor` + command line, or a typed command from a modal), the core's `Reply` back as a
Slack message. Every listener acknowledges at once or within `ack_budget` seconds:

- slash commands and modal submissions start the work as an owned task and wait for it
  up to `ack_budget`; a quick answer rides on the acknowledgement (which is also the only
  way to show errors on a modal's fields), a slow one follows through `response_url`,
  the Web API, or by updating the modal;
- buttons and events are acknowledged first and worked on afterwards.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import modals
from adapters.slack.announcements import (
    PENDING,
    REPOST,
    TIP,
    Announcements,
    not_announced,
    repost_button,
)
from adapters.slack.home import HOST_A_SPACE, Home
from adapters.slack.installations import InstallationStore
from adapters.slack.messages import (
    COMMANDS,
    LINK,
    RUN,
    command_line,
    mentioned,
    reply_message,
    response_type,
)
from adapters.slack.people import Directory
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.errors import InvalidInput
from bot.models import Platform
from bot.replies import Reply
from bot.services.identities import first_zone
from bot.tasks import TaskGroup

log = structlog.get_logger(__name__)

T = TypeVar("T")

APOLOGY = "Something went wrong on our side and it was logged. Please try again."
_BARE_CREATE = re.compile(r"^/space\s+create\s*$", re.I)
_ANNOUNCED = re.compile(r"^Space #(\d+) is announced\.")

Build = Callable[[Actor, modals.Meta, modals.FormValues], Awaitable[t.Command]]
Form = Callable[[modals.Meta, modals.FormValues, str | None], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Who:
    """The person behind a Slack request, as Slack names them."""

    team_id: str
    user_id: str
    name_hint: str = ""
    team_name: str = ""

    @property
    def key(self) -> str:
        return f"{Platform.SLACK.value}:{self.team_id}:{self.user_id}"


def who(body: Mapping[str, Any], context: AsyncBoltContext) -> Who:
    """Slash commands name the user flat (`user_id`), interactions nest it (`user.id`)."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    team_id = context.team_id or body.get("team_id") or team.get("id") or user.get("team_id")
    user_id = context.user_id or body.get("user_id") or user.get("id")
    if not team_id or not user_id:
        raise ValueError("a Slack request without a team or user")
    return Who(
        team_id=str(team_id),
        user_id=str(user_id),
        name_hint=str(body.get("user_name") or user.get("username") or user.get("name") or ""),
        team_name=str(body.get("team_domain") or team.get("domain") or ""),
    )


@dataclass(frozen=True, slots=True)
class _Submission:
    """A modal's kind: how it becomes a command, how it is drawn again, where errors go."""

    name: str
    title: str
    working: str
    build: Build
    form: Form
    fields: Mapping[str, str]


class Interactions:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        directory: Directory,
        home: Home,
        tasks: TaskGroup,
        announcements: Announcements,
        *,
        store: InstallationStore | None,
        ack_budget: float = 2.0,
        open_budget: float = 1.0,
        announce_wait: float = 1.0,
    ) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.directory = directory
        self.home = home
        self.tasks = tasks
        self.store = store
        self.ack_budget = ack_budget
        self.open_budget = open_budget
        self.announcements = announcements
        self.announce_wait = announce_wait
        self.currency = core.settings.default_currency
        self.title_limit = core.settings.max_title_length
        self._create = _Submission(
            "create-space",
            "Host a Space",
            "Announcing your Space…",
            self._build_create,
            lambda meta, values, notice: modals.create_view(
                meta,
                default_currency=self.currency,
                title_limit=self.title_limit,
                values=values,
                notice=notice,
            ),
            modals.CREATE_FIELDS,
        )
        self._tip = _Submission(
            "tip",
            "Tip the host",
            "Sending your tip…",
            self._build_tip,
            lambda meta, values, notice: modals.tip_view(
                meta, default_currency=self.currency, values=values, notice=notice
            ),
            modals.TIP_FIELDS,
        )

    def register(self, app: AsyncApp) -> None:
        for name in COMMANDS:
            app.command(name)(self.on_command)
        app.action(re.compile(rf"^{RUN}:"))(self.on_run_button)
        app.action(re.compile(rf"^{LINK}:"))(self.on_link_button)
        app.action(TIP)(self.on_tip_button)
        app.action(HOST_A_SPACE)(self.on_host_a_space)
        app.view(modals.CREATE)(self.on_create_submitted)
        app.view(modals.TIP)(self.on_tip_submitted)
        app.event("app_home_opened")(self.on_home_opened)
        app.event("app_uninstalled")(self.on_app_uninstalled)
        app.event("tokens_revoked")(self.on_tokens_revoked)

    # --- the core, from Slack ----------------------------------------------------------------

    async def actor(self, client: AsyncWebClient, person: Who) -> Actor:
        """Slack does not say when someone joined a workspace; `member_days:` counts from
        the day Stagepass first saw them there (today, for someone new)."""
        known = await self.core.identities.by_key(person.key)
        return await self.directory.actor(
            client,
            person.team_id,
            person.user_id,
            name_hint=person.name_hint,
            team_name=person.team_name,
            member_since=known.created_at if known is not None else self.core.clock.now(),
        )

    async def run_line(self, client: AsyncWebClient, person: Who, line: str) -> Reply:
        """One command line as `person`; every outcome is a reply."""
        try:
            if line.startswith(REPOST + " "):
                return await self._post_again(line)
            reply = await self.dispatcher.handle(await self.actor(client, person), line)
            return await self._announced(reply)
        except Exception:
            log.exception("slack command failed", line=line[:200], user=person.key)
            return Reply(APOLOGY, error=True)

    async def _announced(self, reply: Reply) -> Reply:
        """The core says a new Space "is announced" as it creates it; here that is only
        said once the post is in the channel. Otherwise the reply says what is wrong and
        how to fix it, with a "Post it again" button, or that the post is on its way."""
        match = _ANNOUNCED.match(reply.text)
        if match is None:
            return reply
        space_id = int(match[1])
        error, channel = await self.announcements.outcome(space_id, self.announce_wait)
        rest = reply.text[match.end() :]
        if error is None:
            return reply
        if error == PENDING:
            return replace(
                reply,
                text=f"Space #{space_id} is set up; its announcement is on "
                "its way to the channel." + rest,
            )
        return replace(
            reply,
            text=":warning: " + not_announced(space_id, error, channel) + rest,
            buttons=(repost_button(space_id), *reply.buttons),
        )

    async def _post_again(self, line: str) -> Reply:
        word = line.split()[1] if len(line.split()) > 1 else ""
        if not word.isdigit() or len(word) > 18:
            return Reply("That button lost track of its Space.", error=True)
        space_id = int(word)
        error, channel = await self.announcements.post_again(space_id)
        if error is None:
            return Reply(f"Space #{space_id} is announced.")
        return Reply(
            ":warning: " + not_announced(space_id, error, channel),
            buttons=(repost_button(space_id),),
        )

    async def _within_budget(self, task: asyncio.Task[T]) -> T | None:
        """The task's result if it is ready within the ack budget, else None (the task
        goes on; its owner answers later)."""
        done, _ = await asyncio.wait({task}, timeout=self.ack_budget)
        if task in done and not task.cancelled() and task.exception() is None:
            return task.result()
        return None

    # --- slash commands ------------------------------------------------------------------------

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        person = who(command, context)
        line = command_line(command["command"], command.get("text") or "")
        if _BARE_CREATE.match(line):
            await ack()
            meta = modals.Meta(
                channel=command.get("channel_id"), response_url=command.get("response_url")
            )
            self.tasks.spawn(
                self._open_create(client, person, command["trigger_id"], meta, respond),
                name="open-create",
            )
            return
        work = self.tasks.spawn(self.run_line(client, person, line), name=command["command"])
        reply = await self._within_budget(work)
        if reply is not None:
            await ack(
                response_type=response_type(reply),
                **reply_message(reply, mentioned(line), await self._tz(person)),
            )
            return
        await ack()
        self.tasks.spawn(
            self._respond_late(work, respond, person, mentioned(line)), name="late-reply"
        )

    async def _respond_late(
        self,
        work: asyncio.Task[Reply],
        respond: AsyncRespond,
        person: Who,
        people: frozenset[str],
    ) -> None:
        reply = await work
        await respond(
            response_type=response_type(reply),
            replace_original=False,
            **reply_message(reply, people, await self._tz(person)),
        )

    async def _tz(self, person: Who) -> ZoneInfo:
        return await self.core.identities.zone_of(person.key)

    async def _open_create(
        self,
        client: AsyncWebClient,
        person: Who,
        trigger_id: str,
        meta: modals.Meta,
        respond: AsyncRespond | None,
    ) -> None:
        # The trigger expires 3 s after the click: a slow zone lookup must not spend it.
        try:
            zone: str | None = await asyncio.wait_for(self._zone(client, person), self.open_budget)
        except TimeoutError:
            zone = None
        meta = modals.Meta(tz=zone, channel=meta.channel, response_url=meta.response_url)
        view = modals.create_view(
            meta, default_currency=self.currency, title_limit=self.title_limit
        )
        if not await self._open(client, trigger_id, view) and respond is not None:
            await respond(
                response_type="ephemeral",
                text="Slack gave me only 3 seconds to open the form and they ran out. Please "
                'try again, or type it: /space create title:"…" starts:"fri 18:00" tickets:50',
            )

    async def _zone(self, client: AsyncWebClient, person: Who) -> str:
        """The zone a form reads times in: the person's Stagepass zone, or for someone
        new, the one their identity will start with (Slack's, from users.info)."""
        known = await self.core.identities.by_key(person.key)
        if known is not None:
            return known.tz
        return first_zone((await self.actor(client, person)).tz)

    async def _open(self, client: AsyncWebClient, trigger_id: str, view: dict[str, Any]) -> bool:
        try:
            await client.views_open(trigger_id=trigger_id, view=view)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("slack views.open failed", error=str(exc))
            return False
        return True

    # --- buttons -------------------------------------------------------------------------------

    async def on_run_button(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        person = who(body, context)
        line = str(action.get("value") or "/help")
        self.tasks.spawn(
            self._run_button(client, person, line, body.get("response_url")), name="button"
        )

    async def _run_button(
        self, client: AsyncWebClient, person: Who, line: str, response_url: str | None
    ) -> None:
        reply = await self.run_line(client, person, line)
        await self.deliver(client, person, reply, response_url, mentioned(line))

    async def deliver(
        self,
        client: AsyncWebClient,
        person: Who,
        reply: Reply,
        response_url: str | None,
        people: frozenset[str] = frozenset(),
    ) -> None:
        """A reply where the person acted: in the conversation (through its
        `response_url`), or, from the App Home or a modal opened there, by DM."""
        message = reply_message(reply, people, await self._tz(person))
        if response_url:
            await AsyncWebhookClient(response_url).send_dict(
                {"response_type": response_type(reply), "replace_original": False, **message}
            )
            return
        opened = await client.conversations_open(users=person.user_id)
        await client.chat_postMessage(channel=opened["channel"]["id"], **message)

    async def on_link_button(self, ack: AsyncAck) -> None:
        await ack()  # the link opens in the browser; Slack still tells us about the click

    async def on_tip_button(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        tip = modals.Meta.load(action.get("value"), space_id="space")  # announcements.tip_value
        meta = modals.Meta(
            space_id=tip.space_id,
            host=tip.host,
            channel=(body.get("channel") or {}).get("id"),
            response_url=body.get("response_url"),
        )
        view = modals.tip_view(meta, default_currency=self.currency)
        self.tasks.spawn(self._open(client, body["trigger_id"], view), name="open-tip")

    async def on_host_a_space(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        self.tasks.spawn(
            self._open_create(client, who(body, context), body["trigger_id"], modals.Meta(), None),
            name="open-create",
        )

    # --- modals --------------------------------------------------------------------------------

    async def _build_create(
        self, actor: Actor, meta: modals.Meta, values: modals.FormValues
    ) -> t.Command:
        tz = ZoneInfo(meta.tz) if meta.tz else await self.dispatcher.tz_of(actor)
        return modals.read_create(values, tz, self.currency)

    async def _build_tip(
        self, actor: Actor, meta: modals.Meta, values: modals.FormValues
    ) -> t.Command:
        return modals.read_tip(values, meta, self.currency)

    async def on_create_submitted(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        await self._submitted(self._create, ack, body, view, context, client)

    async def on_tip_submitted(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        await self._submitted(self._tip, ack, body, view, context, client)

    async def _submitted(
        self,
        kind: _Submission,
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        person = who(body, context)
        meta = modals.Meta.load(view.get("private_metadata"))
        values = modals.form_values(view)
        work = self.tasks.spawn(self._execute(kind, client, person, meta, values), name=kind.name)
        reply = await self._within_budget(work)
        if reply is None:
            await ack(
                response_action="update",
                view=modals.message_view(kind.title, kind.working, working=True),
            )
            self.tasks.spawn(
                self._finish_late(kind, work, client, person, meta, values, view["id"]),
                name=f"{kind.name}-late",
            )
            return
        if not reply.error:
            await ack()  # closes the modal
            self.tasks.spawn(
                self.deliver(client, person, reply, meta.response_url), name=f"{kind.name}-reply"
            )
            return
        errors = modals.field_errors(reply.error_field, reply.text, kind.fields)
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack(response_action="update", view=kind.form(meta, values, reply.text))

    async def _execute(
        self,
        kind: _Submission,
        client: AsyncWebClient,
        person: Who,
        meta: modals.Meta,
        values: modals.FormValues,
    ) -> Reply:
        try:
            actor = await self.actor(client, person)
            command = await kind.build(actor, meta, values)
        except InvalidInput as exc:
            return Reply(exc.message, error=True, error_field=exc.field)
        except Exception:
            log.exception("slack modal failed", modal=kind.name, user=person.key)
            return Reply(APOLOGY, error=True)
        return await self._announced(await self.dispatcher.execute(actor, command))

    async def _finish_late(
        self,
        kind: _Submission,
        work: asyncio.Task[Reply],
        client: AsyncWebClient,
        person: Who,
        meta: modals.Meta,
        values: modals.FormValues,
        view_id: str,
    ) -> None:
        """The answer after the modal was acknowledged with "working on it": the form
        again with the error on top, or the outcome (and the reply where it belongs)."""
        reply = await work
        if reply.error:
            await client.views_update(view_id=view_id, view=kind.form(meta, values, reply.text))
            return
        await client.views_update(
            view_id=view_id, view=modals.message_view(kind.title, reply.text.split("\n")[0])
        )
        await self.deliver(client, person, reply, meta.response_url)

    # --- events --------------------------------------------------------------------------------

    async def on_home_opened(
        self, ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        if event.get("tab") != "home" or not context.team_id:
            return
        self.tasks.spawn(self.home.refresh(context.team_id, event["user"]), name="home")

    async def on_app_uninstalled(self, ack: AsyncAck, context: AsyncBoltContext) -> None:
        await ack()
        self.tasks.spawn(
            self._uninstalled(context.enterprise_id, context.team_id), name="uninstalled"
        )

    async def on_tokens_revoked(
        self, ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        if (event.get("tokens") or {}).get("bot"):
            self.tasks.spawn(
                self._uninstalled(context.enterprise_id, context.team_id), name="tokens-revoked"
            )

    async def _uninstalled(self, enterprise_id: str | None, team_id: str | None) -> None:
        log.info("slack: removed from a workspace", team=team_id, enterprise=enterprise_id)
        if team_id:
            self.directory.forget(team_id)
        if self.store is not None:
            await self.store.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
        else:
            log.warning(
                "slack: the app was removed from the workspace of SLACK_BOT_TOKEN; "
                "that token no longer works",
                team=team_id,
            )
