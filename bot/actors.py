"""Who is asking: a platform identity plus what the platform says about them.

Adapters build an `Actor` from the platform's event (Discord member, Slack user, shell
name); the core decides everything else from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.models import Platform, platform_name


def community_id(platform: Platform | str, external_id: str) -> str:
    return f"{Platform(platform).value}:{external_id}"


def split_key(key: str) -> tuple[str, str]:
    """An identity key `platform:community:user` -> (community id, user id). A Matrix
    user id (`@bob:example.org`) holds a colon itself: it starts at the first `:@`."""
    at = key.find(":@")
    if at >= 0:
        return key[:at], key[at + 1 :]
    community, _, user_id = key.rpartition(":")
    return community, user_id


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person named in a command (a mention), in the actor's community."""

    user_id: str
    display_name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "display_name", platform_name(self.display_name))


@dataclass(frozen=True, slots=True)
class Actor:
    platform: Platform
    community: str  # the guild / workspace id; "local" for the shell
    user_id: str
    display_name: str = ""
    is_moderator: bool = False  # the platform's own moderator rights
    roles: frozenset[str] = field(default_factory=frozenset)  # platform role names / ids
    member_since: datetime | None = None
    email: str | None = None
    community_name: str = ""
    tz: str | None = None  # the zone the platform says the person is in (first seen: kept)
    is_guest: bool = False  # a guest of the community (Slack single/multi-channel guests)

    def __post_init__(self) -> None:
        # the names a platform gives are cleaned; a NUL in typed text is refused instead
        object.__setattr__(self, "display_name", platform_name(self.display_name))
        object.__setattr__(self, "community_name", platform_name(self.community_name))

    @property
    def community_id(self) -> str:
        return community_id(self.platform, self.community)

    @property
    def key(self) -> str:
        return f"{self.community_id}:{self.user_id}"

    def peer(self, ref: UserRef) -> Actor:
        """An `Actor` for someone this actor mentioned, with no platform rights known. A
        mention without a name (Slack's `<@U123>`) leaves the name they are known by."""
        return Actor(self.platform, self.community, ref.user_id, ref.display_name)
