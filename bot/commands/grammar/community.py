"""/community: linking the communities a host runs, so one Space is sold in each."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import types as t
from bot.commands.grammar.reader import Parser, Reader
from bot.commands.grammar.usage import Usage

USAGES: tuple[Usage, ...] = (
    Usage(
        "community link",
        "/community link [CODE]",
        "Link this community with another you run: without CODE you get a one-time code; "
        "enter it there with /community link CODE.",
        who="whoever may host Spaces in each community (STAGEPASS_HOST_RULES).",
        notes=(
            "The code works once, for 15 minutes. Linked, a Space made with also: is "
            "announced on both sides, with one set of seats.",
        ),
        example="/community link K7QD3MZP",
    ),
    Usage("community links", "/community links", "The communities linked with this one."),
    Usage(
        "community unlink",
        "/community unlink COMMUNITY",
        "Remove a link (name the community, or its platform). Spaces already announced "
        "there go on.",
        who="whoever may host Spaces here (STAGEPASS_HOST_RULES).",
    ),
)


def _community(verb: str) -> Parser:
    def parse(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        if verb == "links":
            r.max_positional(0)
            return t.CommunityCommand(verb)
        target = r.positional(0)
        if verb == "unlink" and not target:
            raise r.fail("Name the community to unlink (see /community links).")
        r.max_positional(1)
        return t.CommunityCommand(verb, target)

    return parse


PARSERS: dict[str, Parser] = {
    f"community {verb}": _community(verb) for verb in ("link", "links", "unlink")
}
