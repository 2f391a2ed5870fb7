"""The command grammar: usage table (also the help text) and the parser.

`parse(text, tz=..., now=..., default_currency=...)` returns a typed command or raises
`InvalidInput` with a message that says what to write instead — never anything else.
Each command group (space, ticket, stage, account, community) has its module with its
usages and parsers; `reader` holds the parsing they share.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import types as t
from bot.commands.grammar import account, community, space, stage, ticket
from bot.commands.grammar.reader import Parser, Reader
from bot.commands.grammar.space import bridge_mode, invite_command, promo_command, visibility
from bot.commands.grammar.ticket import invite_token
from bot.commands.grammar.usage import Usage, did_you_mean
from bot.commands.syntax import lex
from bot.errors import InvalidInput

__all__ = [
    "GROUPS",
    "USAGES",
    "Usage",
    "bridge_mode",
    "did_you_mean",
    "help_text",
    "invite_command",
    "invite_token",
    "parse",
    "promo_command",
    "visibility",
]

_MODULES = (space, ticket, stage, account, community)
USAGES: tuple[Usage, ...] = (
    *(usage for module in _MODULES for usage in module.USAGES),
    Usage("help", "/help [command]", "This help."),
)
_BY_PATH = {u.path: u for u in USAGES}
_GROUPS = sorted({u.path.split()[0] for u in USAGES})
GROUPS = frozenset(_GROUPS)
"""The first word of every command (space, ticket, stage, ...): adapters without a command
registry (Matrix) tell a command from talk by it."""

_PARSERS: dict[str, Parser] = {
    **{path: parser for module in _MODULES for path, parser in module.PARSERS.items()},
    "help": lambda r, *_: t.Help(" ".join(r.words.positional)),
}


def help_text(topic: str = "") -> str:
    topic = " ".join(topic.lower().lstrip("/").split())
    chosen = [u for u in USAGES if not topic or u.path == topic or u.path.startswith(topic + " ")]
    if not chosen:
        hint = did_you_mean(topic, [*_BY_PATH, *_GROUPS], "/{}")
        raise InvalidInput(
            f"No command {topic!r}.{hint} Commands: " + ", ".join(f"/{g}" for g in _GROUPS)
        )
    if len(chosen) == 1 and chosen[0].path == topic:
        return chosen[0].details()
    return "\n".join(u.brief() for u in chosen)


def parse(text: str, *, tz: ZoneInfo, now: datetime, default_currency: str = "usd") -> t.Command:
    """Text of one command -> typed command, or `InvalidInput` saying what to write."""
    if len(text) > 4000:
        raise InvalidInput("That command is too long.")
    line = text.strip()
    if not line.startswith("/"):
        raise InvalidInput("Commands start with /, e.g. /space list. Try /help.")
    words = lex(line[1:])
    head = [w.lower() for w in words.positional[:2]]
    for size in (2, 1):
        path = " ".join(head[:size])
        if len(head) >= size and path in _PARSERS:
            del words.positional[:size]
            reader = Reader(path, words, _BY_PATH.get(path))
            if path != "tz":
                reader.check_options()
            return _PARSERS[path](reader, tz, now, default_currency)
    if head and head[0] in _GROUPS:
        verbs = sorted(p.split()[1] for p in _PARSERS if p.startswith(head[0] + " "))
        hint = did_you_mean(head[1], verbs, f"/{head[0]} {{}}") if len(head) > 1 else ""
        raise InvalidInput(
            f"/{head[0]} needs one of: {', '.join(verbs)}.{hint} Try /help {head[0]}."
        )
    name = head[0] if head else ""
    hint = did_you_mean(name, _GROUPS, "/{}") if name else ""
    raise InvalidInput(
        f"There is no /{name} command.{hint} Commands: " + ", ".join(f"/{g}" for g in _GROUPS) + "."
    )
