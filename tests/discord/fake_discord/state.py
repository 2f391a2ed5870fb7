"""The fake Discord's world: users, servers, roles, channels, members, messages,
scheduled events, Stage instances and voice states, with Discord's JSON shapes and its
permission and role-hierarchy rules (what the bot may do is decided here, as Discord
would decide it)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import permissions as P

Json = dict[str, Any]

TEXT, DM, VOICE, STAGE = 0, 1, 2, 13
_EPOCH_MS = 1420070400000


class Snowflakes:
    """Ids that decode to plausible creation times, increasing."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def next(self) -> int:
        return ((1_750_000_000_000 - _EPOCH_MS) << 22) + next(self._n)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


@dataclass
class User:
    id: int
    name: str
    bot: bool = False

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    bot_id: int | None = None
    mentionable: bool = False

    def payload(self) -> Json:
        data: Json = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass
class Channel:
    id: int
    name: str
    type: int
    guild_id: int | None = None
    position: int = 0
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    recipient: User | None = None  # DMs

    def payload(self) -> Json:
        if self.type == DM:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": DM,
                "last_message_id": None,
                "recipients": [self.recipient.payload()],
            }
        data: Json = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.payload() for o in self.overwrites.values()],
            "parent_id": None,
            "nsfw": False,
            "flags": 0,
        }
        if self.type == TEXT:
            data.update(topic=None, rate_limit_per_user=0, last_message_id=None)
        else:
            data.update(bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None)
        return data


@dataclass
class Member:
    user: User
    roles: set[int] = field(default_factory=set)
    joined_at: datetime = field(default_factory=lambda: datetime(2029, 1, 1, tzinfo=UTC))
    mute: bool = False
    deaf: bool = False

    def payload(self, *, with_user: bool = True) -> Json:
        data: Json = {
            "roles": [str(r) for r in sorted(self.roles)],
            "nick": None,
            "avatar": None,
            "joined_at": iso(self.joined_at),
            "deaf": self.deaf,
            "mute": self.mute,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class VoiceState:
    user_id: int
    channel_id: int | None
    suppress: bool = True
    request_to_speak: datetime | None = None
    session_id: str = "fake-voice-session"


@dataclass
class ScheduledEvent:
    id: int
    guild_id: int
    name: str
    start: str
    entity_type: int  # 1 stage, 2 voice, 3 external
    creator: User
    channel_id: int | None = None
    end: str | None = None
    description: str | None = None
    location: str | None = None
    status: int = 1  # 1 scheduled, 2 active, 3 completed, 4 canceled
    privacy_level: int = 2
    interested: list[int] = field(default_factory=list)

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id) if self.channel_id else None,
            "creator_id": str(self.creator.id),
            "creator": self.creator.payload(),
            "name": self.name,
            "description": self.description,
            "scheduled_start_time": self.start,
            "scheduled_end_time": self.end,
            "privacy_level": self.privacy_level,
            "status": self.status,
            "entity_type": self.entity_type,
            "entity_id": None,
            "entity_metadata": {"location": self.location} if self.location else None,
            "user_count": len(self.interested),
            "image": None,
            "recurrence_rule": None,
        }


@dataclass
class StageInstance:
    id: int
    guild_id: int
    channel_id: int
    topic: str
    event_id: int | None = None
    privacy_level: int = 2

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "topic": self.topic,
            "privacy_level": self.privacy_level,
            "discoverable_disabled": False,
            "guild_scheduled_event_id": str(self.event_id) if self.event_id else None,
        }


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    voice: dict[int, VoiceState] = field(default_factory=dict)
    events: dict[int, ScheduledEvent] = field(default_factory=dict)
    stages: dict[int, StageInstance] = field(default_factory=dict)  # by channel id

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    def permissions(self, user_id: int) -> int:
        """Server-wide permissions of a member (administrators have them all)."""
        if user_id == self.owner_id:
            return P.ALL
        member = self.members[user_id]
        value = self.everyone.permissions
        for role_id in member.roles:
            value |= self.roles[role_id].permissions
        return P.ALL if value & P.ADMINISTRATOR else value

    def channel_permissions(self, user_id: int, channel: Channel) -> int:
        """A member's permissions in `channel`, in Discord's documented order: @everyone's
        overwrite, then the member's roles' (denies, then allows), then the member's own."""
        value = self.permissions(user_id)
        if value & P.ADMINISTRATOR or user_id == self.owner_id:
            return P.ALL
        overwrites = channel.overwrites
        if (everyone := overwrites.get(self.id)) is not None:
            value = (value & ~everyone.deny) | everyone.allow
        roles = [overwrites[r] for r in self.members[user_id].roles if r in overwrites]
        value &= ~_union(o.deny for o in roles)
        value |= _union(o.allow for o in roles)
        if (own := overwrites.get(user_id)) is not None and own.type == 1:
            value = (value & ~own.deny) | own.allow
        return value

    def top_position(self, user_id: int) -> int:
        member = self.members[user_id]
        return max((self.roles[r].position for r in member.roles), default=0)

    def can_manage_role(self, user_id: int, role: Role | None) -> str | None:
        """None when allowed; otherwise why Discord says 403."""
        if not self.permissions(user_id) & P.MANAGE_ROLES:
            return "Missing Permissions"
        if (
            role is not None
            and user_id != self.owner_id
            and (role.position >= self.top_position(user_id) or role.managed)
        ):
            return "Missing Permissions"
        return None

    def voice_payload(self, state: VoiceState) -> Json:
        member = self.members[state.user_id]
        return {
            "guild_id": str(self.id),
            "channel_id": str(state.channel_id) if state.channel_id else None,
            "user_id": str(state.user_id),
            "member": member.payload(),
            "session_id": state.session_id,
            "deaf": member.deaf,
            "mute": member.mute,
            "self_deaf": False,
            "self_mute": False,
            "self_stream": False,
            "self_video": False,
            "suppress": state.suppress,
            "request_to_speak_timestamp": iso(state.request_to_speak)
            if state.request_to_speak
            else None,
        }

    def payload(self) -> Json:
        """GUILD_CREATE."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": iso(datetime(2029, 1, 1, tzinfo=UTC)),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [m.payload() for m in self.members.values()],
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "voice_states": [
                {k: v for k, v in self.voice_payload(s).items() if k not in ("guild_id", "member")}
                for s in self.voice.values()
                if s.channel_id is not None
            ],
            "stage_instances": [s.payload() for s in self.stages.values()],
            "guild_scheduled_events": [e.payload() for e in self.events.values()],
            "soundboard_sounds": [],
        }


@dataclass
class Message:
    id: int
    channel_id: int
    author: User
    content: str = ""
    embeds: list[Json] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    flags: int = 0
    guild_id: int | None = None
    edited: datetime | None = None
    interaction_id: int | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    def custom_ids(self) -> list[str]:
        return [
            c.get("custom_id", "") for row in self.components for c in row.get("components", [])
        ]

    def button(self, label: str) -> Json:
        for row in self.components:
            for component in row.get("components", []):
                if component.get("label") == label:
                    return dict(component)
        labels = [c.get("label") for row in self.components for c in row.get("components", [])]
        raise AssertionError(f"no button {label!r} on the message (buttons: {labels})")

    def text(self) -> str:
        """Content plus embed titles, descriptions and fields: what a reader sees."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        return "\n".join(p for p in parts if p)

    def payload(self) -> Json:
        data: Json = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [],
            "timestamp": iso(datetime.now(UTC)),
            "edited_timestamp": iso(self.edited) if self.edited else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "type": 0 if self.interaction_id is None else 20,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        return data


def _union(bits: Iterable[int]) -> int:
    value = 0
    for bit in bits:
        value |= bit
    return value
