"""An in-memory chat platform: people type commands and read replies, DMs and the channel.

The terminal REPL drives it for humans; the tests drive it as a real backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.actors import Actor
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.events import (
    DirectMessage,
    PaymentDisputed,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceStarted,
    TipReceived,
)
from bot.models import Platform
from bot.notices import dispute_alert, tip_thanks
from bot.replies import Reply

COMMUNITY = "local"


@dataclass
class Person:
    name: str
    moderator: bool = False
    roles: frozenset[str] = frozenset()
    email: str | None = None
    dms: list[DirectMessage] = field(default_factory=list)


def render(reply: Reply) -> str:
    """Plain text for a terminal: title, text, then buttons as `[label] command-or-url`."""
    parts = []
    if reply.title:
        parts.append(f"== {reply.title} ==")
    parts.append(("! " if reply.error else "") + reply.text)
    for button in reply.buttons:
        parts.append(f"  [{button.label}] {button.command or button.url}")
    return "\n".join(parts)


def render_dm(message: DirectMessage) -> str:
    lines = [message.text] + [f"  [{label}] {url}" for label, url in message.links]
    return "\n".join(lines)


class Chat:
    def __init__(self, core: Core, dispatcher: Dispatcher, community: str = COMMUNITY) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.community = community
        self.people: dict[str, Person] = {}
        self.channel: list[str] = []
        self.unread: list[tuple[str, str]] = []  # (who, text) not yet shown by a REPL
        self.on_unread: Callable[[], None] | None = None
        """Called when something lands in `unread` (the REPL prints it at once)."""
        core.bus.subscribe(DirectMessage, self._on_dm)
        core.outbox.delivers(Platform.SHELL)
        core.bus.subscribe(SpaceAnnounced, self._on_space_event)
        core.bus.subscribe(SpaceStarted, self._on_space_event)
        core.bus.subscribe(SpaceCancelled, self._on_space_event)
        core.bus.subscribe(TipReceived, self._on_tip)
        core.bus.subscribe(PaymentDisputed, self._on_dispute)

    @property
    def community_id(self) -> str:
        return f"{Platform.SHELL.value}:{self.community}"

    def person(
        self, name: str, *, moderator: bool | None = None, roles: frozenset[str] | None = None
    ) -> Person:
        person = self.people.setdefault(name, Person(name))
        if moderator is not None:
            person.moderator = moderator
        if roles is not None:
            person.roles = roles
        return person

    def actor(self, name: str) -> Actor:
        p = self.person(name)
        return Actor(
            Platform.SHELL,
            self.community,
            name,
            name,
            is_moderator=p.moderator,
            roles=p.roles,
            email=p.email,
            community_name="Shell",
        )

    async def say(self, name: str, text: str) -> Reply:
        """`name` types `text`; returns the reply once every consequence has happened."""
        reply = await self.dispatcher.handle(self.actor(name), text)
        await self.core.bus.drain()
        return reply

    def dms(self, name: str) -> list[str]:
        return [render_dm(m) for m in self.person(name).dms]

    async def _on_dm(self, message: DirectMessage) -> None:
        community, _, user = message.identity_key.rpartition(":")
        if community != self.community_id:
            return
        self.person(user).dms.append(message)
        self._unread(user, render_dm(message))
        await self.core.outbox.sent(message.id)

    async def _on_space_event(self, event: SpaceAnnounced | SpaceStarted | SpaceCancelled) -> None:
        shown = await self.core.communities.shown_on(
            event.space_id, event.community_id, Platform.SHELL
        )
        if self.community_id not in shown:
            return
        space = await self.core.spaces.get(event.space_id)
        what = {SpaceAnnounced: "New Space", SpaceStarted: "Live now", SpaceCancelled: "Cancelled"}[
            type(event)
        ]
        line = f"{what}: #{space.id} {space.title}"
        if isinstance(event, SpaceCancelled) and event.reason:
            line += f" ({event.reason})"
        self._post(line)

    def _post(self, line: str) -> None:
        self.channel.append(line)
        self._unread("#channel", line)

    def _unread(self, who: str, text: str) -> None:
        self.unread.append((who, text))
        if self.on_unread is not None:
            self.on_unread()

    async def _on_tip(self, event: TipReceived) -> None:
        """A public tip is thanked in the channel (a private one only by DM)."""
        if event.community_id != self.community_id or not event.public:
            return
        self._post(tip_thanks(event, tipper=_name(event.tipper_key), host=_name(event.host_key)))

    async def _on_dispute(self, event: PaymentDisputed) -> None:
        """Moderators read the channel: a disputed payment is announced there."""
        if event.community_id != self.community_id:
            return
        space = await self.core.spaces.get(event.space_id)
        self._post(dispute_alert(event, space, buyer=_name(event.holder_key)))


def _name(identity_key: str) -> str:
    """A shell person's name: the last part of their identity key."""
    return identity_key.rpartition(":")[2]
