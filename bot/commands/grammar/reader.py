"""Reading one command's words: the shared parsing every group's parsers use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actors import UserRef
from bot.commands import types as t
from bot.commands.grammar.usage import Usage, did_you_mean
from bot.commands.syntax import Words, mention, space_id
from bot.errors import InvalidInput
from bot.models import MAX_ID


class Reader:
    """Reads one command's words, remembering which options were used."""

    def __init__(self, path: str, words: Words, usage: Usage | None) -> None:
        self.path = path
        self.words = words
        self.usage = usage

    def fail(self, message: str) -> InvalidInput:
        hint = f" Usage: {self.usage.usage}" if self.usage else ""
        return InvalidInput(message + hint)

    def check_options(self) -> None:
        allowed = set(self.usage.options if self.usage else ())
        unknown = sorted(set(self.words.options) - allowed)
        if unknown:
            known = ", ".join(f"{o}:" for o in sorted(allowed)) or "none"
            hint = did_you_mean(unknown[0], allowed, "{}:")
            raise self.fail(
                f"Unknown option {unknown[0]}: for /{self.path}.{hint} (options: {known})."
            )

    def positional(self, index: int) -> str | None:
        pos = self.words.positional
        return pos[index] if index < len(pos) else None

    def max_positional(self, count: int) -> None:
        if len(self.words.positional) > count:
            extra = self.words.positional[count]
            raise self.fail(f"I don't know what {extra!r} means here; quote values with spaces.")

    def space(self, index: int, *, required: bool = True) -> int | None:
        word = self.positional(index) or self.words.options.get("space")
        if word is None:
            if required:
                raise self.fail("Name the Space by its number, e.g. 12 or #12.")
            return None
        found = space_id(word)
        if found is None:
            raise self.fail(f"{word!r} is not a Space number.")
        return found

    def user(self, index: int) -> UserRef:
        word = self.positional(index)
        ref = mention(word) if word else None
        if ref is None:
            raise self.fail("Mention someone, e.g. @alice.")
        return ref

    def option(self, name: str) -> str | None:
        return self.words.options.get(name)

    def integer(self, name: str, *, minimum: int = 1) -> int | None:
        raw = self.option(name)
        if raw is None:
            return None
        text = raw.replace(",", "").replace("_", "")
        if not text.lstrip("-").isdecimal() or len(text) > 12:
            raise InvalidInput(f"{name}: must be a whole number, not {raw!r}.", field=name)
        value = int(text)
        if value < minimum:
            raise InvalidInput(f"{name}: must be at least {minimum}.", field=name)
        if value > MAX_ID:
            raise InvalidInput(f"{name}: must be at most {MAX_ID:,}.", field=name)
        return value

    def flag(self, name: str) -> bool | None:
        raw = self.option(name)
        if raw is None:
            return None
        lowered = raw.lower()
        if lowered in {"yes", "y", "true", "on", "1", ""}:
            return True
        if lowered in {"no", "n", "false", "off", "0"}:
            return False
        raise InvalidInput(f"{name}: takes yes or no, not {raw!r}.", field=name)


Parser = Callable[[Reader, ZoneInfo, datetime, str], t.Command]
"""One command's parser: its words, the reader's zone, now, and the default currency."""
