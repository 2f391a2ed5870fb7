"""The lexer: `/space create title:"Ask me anything" tickets:100` -> words and options.

Mentions are normalised here from every platform's form: Discord `<@123>`, Slack
`<@U123|name>`, Matrix `@bob:example.org` and the shell's `@alice`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.actors import UserRef
from bot.errors import InvalidInput
from bot.models import row_id

_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<key>[A-Za-z][\w-]*):(?:"(?P<qval>[^"]*)"|(?P<val>[^\s"]*))(?=\s|$)
      | "(?P<qpos>[^"]*)"(?=\s|$)
      | (?P<pos>[^\s"]+)(?=\s|$)
    )""",
    re.X,
)
_MENTION = re.compile(
    r"^<@!?([A-Za-z0-9_.-]+)(?:\|([^>]*))?>$|^@([\w.-]+)$|^(@[\w.=/+-]+:[\w.-]+(?::\d+)?)$"
)


@dataclass
class Words:
    """The command line split up: the positional words and the `key:value` options."""

    positional: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


def lex(text: str) -> Words:
    line = text.translate(_QUOTES).strip()
    words = Words()
    pos = 0
    while pos < len(line):
        match = _TOKEN.match(line, pos)
        if match is None or match.end() == pos:
            rest = line[pos:].strip()
            if rest.count('"') % 2:
                raise InvalidInput('A quote is not closed; put the closing " after the value.')
            raise InvalidInput(f"I can't read {rest[:30]!r}; quote values that contain spaces.")
        pos = match.end()
        if match["key"]:
            key = match["key"].lower().replace("-", "_")
            if key in words.options:
                raise InvalidInput(f"The option {key}: is given twice.")
            value = match["qval"] if match["qval"] is not None else match["val"]
            words.options[key] = value or ""
        else:
            words.positional.append(match["qpos"] if match["qpos"] is not None else match["pos"])
        while pos < len(line) and line[pos].isspace():
            pos += 1
    return words


def mention(word: str) -> UserRef | None:
    match = _MENTION.match(word.strip())
    if match is None:
        return None
    if match[4]:
        return UserRef(match[4])  # a Matrix user id, kept whole
    if match[3]:
        return UserRef(match[3], match[3])
    return UserRef(match[1], match[2] or "")


def space_id(word: str) -> int | None:
    return row_id(word.strip().lstrip("#"))
