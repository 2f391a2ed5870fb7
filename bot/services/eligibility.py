"""Who may host: a list of rules from `STAGEPASS_HOST_RULES`; any rule that matches is
enough. X asked for 600, later 1,000 followers; chat communities have better signals:

    anyone              every member
    moderators          members the platform calls moderators (Discord stage
                        moderators, Slack admins/owners, shell --moderator)
    role:NAME           members with that platform role (Discord role name or id)
    user:COMMUNITY:ID   one person, e.g. user:discord:1234:5678 or user:shell:local:alice
    member_days:N       members of the community for at least N days
    guests              guests of the community too (Slack guests): without this rule,
                        or a `user:` rule naming them, a guest never hosts
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.actors import Actor
from bot.errors import InvalidInput, PermissionDenied


@dataclass(frozen=True, slots=True)
class HostRule:
    kind: str
    value: str = ""

    def allows(self, actor: Actor, now: datetime) -> bool:
        match self.kind:
            case "anyone":
                return True
            case "moderators":
                return actor.is_moderator
            case "role":
                return self.value in actor.roles
            case "user":
                return actor.key == self.value
            case "guests":
                return False  # lets guests through the other rules; matches nobody alone
            case "member_days":
                return actor.member_since is not None and (
                    now - actor.member_since >= timedelta(days=int(self.value))
                )
        return False

    def describe(self) -> str:
        return {
            "anyone": "any member",
            "moderators": "moderators",
            "role": f"members with the {self.value!r} role",
            "user": "people on the host list",
            "member_days": f"members of at least {self.value} days",
            "guests": "guests",
        }[self.kind]


def parse_rule(text: str) -> HostRule:
    kind, _, value = text.strip().partition(":")
    if kind in {"anyone", "moderators", "guests"} and not value:
        return HostRule(kind)
    if kind in {"role", "user"} and value:
        return HostRule(kind, value)
    if kind == "member_days" and value.isdigit():
        return HostRule(kind, value)
    raise InvalidInput(
        f"Unknown host rule {text!r}: use anyone, moderators, role:NAME, user:ID, "
        "member_days:N or guests"
    )


class HostEligibility:
    def __init__(self, rules: list[str]) -> None:
        self.rules = [parse_rule(r) for r in rules]

    def check(self, actor: Actor, now: datetime) -> None:
        if actor.is_guest and not any(
            rule.kind == "guests" or (rule.kind == "user" and rule.allows(actor, now))
            for rule in self.rules
        ):
            raise PermissionDenied(
                "Guests of this workspace can't host Spaces here. Ask a member to host, or "
                "an admin to add the guests rule to STAGEPASS_HOST_RULES."
            )
        if any(rule.allows(actor, now) for rule in self.rules):
            return
        who = " or ".join(rule.describe() for rule in self.rules if rule.kind != "guests")
        raise PermissionDenied(f"Only {who} can host Spaces here.")
