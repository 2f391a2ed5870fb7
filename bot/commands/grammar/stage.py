"""/stage: who speaks in a live Space."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import types as t
from bot.commands.grammar.reader import Parser, Reader
from bot.commands.grammar.usage import Usage
from bot.permissions import Action

USAGES: tuple[Usage, ...] = (
    Usage(
        "stage request",
        "/stage request [space:SPACE]",
        "Ask to speak.",
        ("space",),
        action=Action.REQUEST_TO_SPEAK,
    ),
    Usage(
        "stage hand",
        "/stage hand [up|down] [space:SPACE]",
        "Raise or lower your hand.",
        ("space",),
        action=Action.REQUEST_TO_SPEAK,
    ),
    Usage(
        "stage promote",
        "/stage promote @user [space:SPACE]",
        "Make a listener a speaker.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage invite",
        "/stage invite @user [space:SPACE]",
        "Make someone a speaker when they join (before or during the Space).",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage demote",
        "/stage demote @user [space:SPACE]",
        "Back to listener.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage mute",
        "/stage mute @user [space:SPACE]",
        "Mute a speaker.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage unmute",
        "/stage unmute @user [space:SPACE]",
        "Unmute a speaker.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage remove",
        "/stage remove @user [space:SPACE]",
        "Remove someone from the room.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage allow",
        "/stage allow @user [space:SPACE]",
        "Let someone removed from the stage back in.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage("stage queue", "/stage queue [space:SPACE]", "Speakers and raised hands.", ("space",)),
)


def _stage(verb: str) -> Parser:
    def parse(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        space = r.space(99, required=False)
        if verb in {"request", "queue"}:
            r.max_positional(0)
            return t.StageCommand(verb, space)
        if verb == "hand":
            word = (r.positional(0) or "up").lower()
            if word not in {"up", "down"}:
                raise r.fail("Say up or down.")
            r.max_positional(1)
            return t.StageCommand("hand", space, up=word == "up")
        user = r.user(0)
        r.max_positional(1)
        return t.StageCommand(verb, space, user)

    return parse


PARSERS: dict[str, Parser] = {
    f"stage {verb}": _stage(verb)
    for verb in (
        "request",
        "hand",
        "promote",
        "invite",
        "demote",
        "mute",
        "unmute",
        "remove",
        "allow",
        "queue",
    )
}
