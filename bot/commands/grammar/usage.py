"""A command's help: its usage line, summary, options and notes (`/help COMMAND`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches

from bot.permissions import Action, who_may


@dataclass(frozen=True, slots=True)
class Usage:
    """One command: its usage line and summary (the short help), and for `/help COMMAND`
    who may use it, notes on its values and defaults, and an example."""

    path: str
    usage: str
    summary: str
    options: tuple[str, ...] = ()
    who: str = ""
    notes: tuple[str, ...] = ()
    example: str = ""
    action: Action | None = None
    """The permission the command needs: `Who:` is then read from `bot.permissions`."""

    def brief(self) -> str:
        """The usage line and the summary: one entry of a list of commands."""
        return f"{self.usage}\n    {self.summary}"

    def details(self) -> str:
        """The long help of this one command."""
        lines = [self.brief()]
        who = self.who or (f"{who_may(self.action)}." if self.action else "")
        if who:
            lines.append(f"Who: {who}")
        lines += [f"  {note}" for note in self.notes]
        if self.example:
            lines.append(f"Example: {self.example}")
        return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str], shown: str = "{}") -> str:
    """` Did you mean X?` for the choice closest to a mistyped `word`, or "" (difflib);
    `shown` formats the choice (`"/{}"`, `"{}:"`)."""
    close = get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {shown.format(close[0])}?" if close else ""


WHEN_FORMATS = (
    'starts: "tomorrow 18:00", "fri 18:00", "2030-05-01 18:00", "in 2 hours"; read in your '
    "zone (see /tz; set it with /tz set Europe/Berlin)."
)


SPACE_FIELDS = (
    "title",
    "starts",
    "price",
    "currency",
    "tickets",
    "duration",
    "description",
    "limit",
    "visibility",
)
