"""Who someone is in Slack: name, zone, email, and whether Stagepass should treat them as
a moderator (workspace admins and owners, and members of SLACK_MODERATOR_GROUP); and who
the moderators of a workspace are, to tell them about disputed payments.

Answers come from `users.info`, `users.list` and `usergroups.users.list` and are cached
for a few minutes: a person clicking three buttons costs one lookup. When Slack cannot
answer, the person is treated as a plain member and the problem is logged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.actors import Actor
from bot.models import Platform

log = structlog.get_logger(__name__)

_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_RETRY_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    name: str
    is_admin: bool  # admin, owner or primary owner of the workspace
    tz: str | None = None
    email: str | None = None
    is_guest: bool = False  # a single- or multi-channel guest (is_restricted)


def _zone(user: dict[str, Any]) -> str | None:
    """The user's zone: `tz`, else a fixed zone for a whole-hour `tz_offset` (seconds east
    of UTC; `Etc/GMT+5` is five hours *behind*), else None."""
    tz, offset = user.get("tz"), user.get("tz_offset")
    if isinstance(tz, str) and tz:
        return tz
    if isinstance(offset, int) and not isinstance(offset, bool) and offset % 3600 == 0:
        hours = offset // 3600
        return f"Etc/GMT{-hours:+d}" if hours else "UTC"
    return None


def profile_from(user: dict[str, Any]) -> Profile:
    details = user.get("profile") or {}
    name = (
        details.get("display_name")
        or details.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or user["id"]
    )
    return Profile(
        user_id=user["id"],
        name=str(name),
        is_admin=bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")),
        tz=_zone(user),
        email=details.get("email"),
        is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
    )


class Directory:
    def __init__(
        self,
        moderator_group: str | None,
        *,
        ttl: float = 300.0,
        group_ttl: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        roles: bool = False,
    ) -> None:
        self.moderator_group = (moderator_group or "").lstrip("@") or None
        self.roles = roles  # whether a host rule asks for roles (user groups): else not read
        self._memberships: dict[str, tuple[float, dict[str, frozenset[str]]]] = {}
        self.ttl = ttl
        self.group_ttl = group_ttl
        self._now = monotonic
        self._profiles: dict[tuple[str, str], tuple[float, Profile | None]] = {}
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._admins: dict[str, tuple[float, frozenset[str]]] = {}

    def forget(self, team_id: str) -> None:
        """Drop what is cached about a workspace (it uninstalled the app)."""
        self._profiles = {k: v for k, v in self._profiles.items() if k[0] != team_id}
        self._groups.pop(team_id, None)
        self._admins.pop(team_id, None)
        self._memberships.pop(team_id, None)

    async def roles_of(self, client: AsyncWebClient, team_id: str, user_id: str) -> frozenset[str]:
        """The user groups `user_id` is in, each by id and by handle (`S0MODS`, `stage-mods`),
        which is what a `role:` host rule names in Slack. One `usergroups.list` per
        workspace and `group_ttl`."""
        cached = self._memberships.get(team_id)
        if cached is None or self._now() >= cached[0]:
            groups: dict[str, frozenset[str]] = {}
            ttl = self.group_ttl
            try:
                response = await client.usergroups_list(include_users=True)
                for group in response.get("usergroups") or ():
                    names = frozenset(str(n) for n in (group.get("id"), group.get("handle")) if n)
                    for member in group.get("users") or ():
                        groups[str(member)] = groups.get(str(member), frozenset()) | names
            except (SlackApiError, SlackClientError) as exc:
                log.warning("slack usergroups.list failed", team=team_id, error=str(exc))
                ttl = _RETRY_SECONDS
            cached = (self._now() + ttl, groups)
            self._memberships[team_id] = cached
        return cached[1].get(user_id, frozenset())

    async def profile(self, client: AsyncWebClient, team_id: str, user_id: str) -> Profile | None:
        key = (team_id, user_id)
        cached = self._profiles.get(key)
        if cached is not None and self._now() < cached[0]:
            return cached[1]
        try:
            response = await client.users_info(user=user_id)
            found: Profile | None = profile_from(response["user"])
        except (SlackApiError, SlackClientError, KeyError) as exc:
            log.warning("slack users.info failed", team=team_id, user=user_id, error=str(exc))
            found = None
        # a failed lookup is retried soon; a good one is kept for `ttl`
        self._profiles[key] = (self._now() + (self.ttl if found else _RETRY_SECONDS), found)
        return found

    async def group_members(self, client: AsyncWebClient, team_id: str) -> frozenset[str]:
        if self.moderator_group is None:
            return frozenset()
        cached = self._groups.get(team_id)
        if cached is not None and self._now() < cached[0]:
            return cached[1]
        members: frozenset[str] = frozenset()
        ttl = self.group_ttl
        try:
            group_id = await self._group_id(client)
            if group_id is not None:
                response = await client.usergroups_users_list(usergroup=group_id)
                members = frozenset(response.get("users") or ())
            else:
                log.warning(
                    "slack moderator group not found", team=team_id, group=self.moderator_group
                )
        except (SlackApiError, SlackClientError) as exc:
            log.warning("slack moderator group lookup failed", team=team_id, error=str(exc))
            ttl = _RETRY_SECONDS
        self._groups[team_id] = (self._now() + ttl, members)
        return members

    async def admins(self, client: AsyncWebClient, team_id: str) -> frozenset[str]:
        """The workspace's admins and owners (people, not bots), from `users.list`, page
        by page. Slack has no narrower question to ask; the answer is cached for `ttl`."""
        cached = self._admins.get(team_id)
        if cached is not None and self._now() < cached[0]:
            return cached[1]
        found: set[str] = set()
        ttl = self.ttl
        cursor = ""
        try:
            while True:
                response = await client.users_list(limit=200, cursor=cursor or None)
                for user in response.get("members") or ():
                    if user.get("deleted") or user.get("is_bot"):
                        continue
                    if profile_from(user).is_admin:
                        found.add(str(user["id"]))
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or ""
                if not cursor:
                    break
        except (SlackApiError, SlackClientError, KeyError) as exc:
            log.warning("slack users.list failed", team=team_id, error=str(exc))
            ttl = _RETRY_SECONDS
        admins = frozenset(found)
        self._admins[team_id] = (self._now() + ttl, admins)
        return admins

    async def moderators(self, client: AsyncWebClient, team_id: str) -> frozenset[str]:
        """Everyone `actor` treats as a moderator: admins, owners and SLACK_MODERATOR_GROUP."""
        return await self.admins(client, team_id) | await self.group_members(client, team_id)

    async def _group_id(self, client: AsyncWebClient) -> str | None:
        assert self.moderator_group is not None
        if _GROUP_ID.match(self.moderator_group):
            return self.moderator_group
        response = await client.usergroups_list()
        for group in response.get("usergroups") or ():
            if group.get("handle") == self.moderator_group:
                return str(group["id"])
        return None

    async def actor(
        self,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        *,
        name_hint: str = "",
        team_name: str = "",
        member_since: datetime | None = None,
    ) -> Actor:
        """The core's `Actor` for a Slack user: moderator rights, zone, guest or member,
        and (when a host rule names roles) their user groups."""
        profile = await self.profile(client, team_id, user_id)
        moderator = bool(profile and profile.is_admin)
        if not moderator and self.moderator_group is not None:
            moderator = user_id in await self.group_members(client, team_id)
        roles = await self.roles_of(client, team_id, user_id) if self.roles else frozenset()
        return Actor(
            Platform.SLACK,
            team_id,
            user_id,
            display_name=(profile.name if profile else "") or name_hint or user_id,
            is_moderator=moderator,
            roles=roles,
            member_since=member_since,
            email=profile.email if profile else None,
            community_name=team_name,
            tz=profile.tz if profile else None,
            is_guest=bool(profile and profile.is_guest),
        )


def mention(identity_key: str) -> str:
    """How a message names a person (Slack shows their name): `<@U123>`."""
    return f"<@{identity_key.rpartition(':')[2]}>"


def team_of(community_id: str) -> str | None:
    """The workspace id of a core community id, when it is a Slack one."""
    platform, _, team = community_id.partition(":")
    return team if platform == Platform.SLACK.value and team else None


def slack_user(identity_key: str) -> tuple[str, str] | None:
    """(team id, user id) of a core identity key, when it is a Slack person."""
    community, _, user = identity_key.rpartition(":")
    team = team_of(community)
    return (team, user) if team and user else None
