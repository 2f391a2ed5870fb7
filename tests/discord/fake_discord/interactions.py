"""Interactions as the fake Discord creates them (INTERACTION_CREATE payloads shaped like
Discord's, built from the commands the bot synced) and records their answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .state import Channel, Guild, Json, Member, Message, User

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
# callback types
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, CHOICES, MODAL = 4, 5, 6, 7, 8, 9
EPHEMERAL, LOADING = 64, 128
ANSWER_WITHIN = 3.0  # seconds Discord waits for the first callback

# option types
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER = 1, 2, 3, 4, 5, 6


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int
    guild: Guild
    channel: Channel
    user: User
    created: float = field(default_factory=time.monotonic)
    callbacks: list[Json] = field(default_factory=list)
    original: Message | None = None
    original_deleted: bool = False
    followups: list[Message] = field(default_factory=list)
    late: bool = False  # a callback came after Discord's 3 s

    @property
    def callback_types(self) -> list[int]:
        return [c["type"] for c in self.callbacks]

    @property
    def choices(self) -> list[Json] | None:
        for callback in self.callbacks:
            if callback["type"] == CHOICES:
                return list(callback.get("data", {}).get("choices", []))
        return None

    @property
    def modal(self) -> Json | None:
        for callback in self.callbacks:
            if callback["type"] == MODAL:
                return dict(callback["data"])
        return None

    def answer(self) -> Message | None:
        """The message the member ends up seeing, once there is one."""
        if self.followups:
            return self.followups[-1]
        original = self.original
        if original is not None and not self.original_deleted and not original.flags & LOADING:
            return original
        return None


def option_values(
    schema: Json, values: dict[str, Any], *, focused: str | None = None
) -> tuple[list[Json], Json]:
    """Typed options for a (sub)command from the schema the bot registered, plus the
    `resolved` block for members named in them."""
    by_name = {o["name"]: o for o in schema.get("options", [])}
    options: list[Json] = []
    resolved: Json = {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in by_name:
            raise AssertionError(f"/{schema['name']} has no option {name!r}: {sorted(by_name)}")
        kind = by_name[name]["type"]
        entry: Json = {"name": name, "type": kind}
        if kind == USER:
            member: Member = value
            entry["value"] = str(member.user.id)
            resolved.setdefault("users", {})[str(member.user.id)] = member.user.payload()
            resolved.setdefault("members", {})[str(member.user.id)] = {
                **member.payload(with_user=False),
                "permissions": "0",
            }
        elif name == focused:
            entry["value"] = str(value)
            entry["focused"] = True
        elif kind == INTEGER:
            entry["value"] = int(value)
        elif kind == BOOLEAN:
            entry["value"] = bool(value)
        else:
            entry["value"] = str(value)
        options.append(entry)
    missing = [
        o["name"]
        for o in schema.get("options", [])
        if o.get("required") and o["name"] not in values
    ]
    if missing and focused is None:
        raise AssertionError(f"/{schema['name']} needs {missing}")
    return options, resolved
