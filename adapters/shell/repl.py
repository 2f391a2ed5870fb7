"""`stagepass shell`: type commands as someone, see replies, DMs and the channel.

`/as bob` switches identity (`/as bob mod` as a moderator); `/quit` leaves. With
`--script FILE` or piped input every line runs in turn and every reply is printed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable

from rich.console import Console

from adapters.shell.chat import Chat, render

console = Console(highlight=False, soft_wrap=True)

BANNER = (
    "Stagepass shell — you are [bold]{name}[/]. Type /help for commands, "
    "/as NAME [mod] to switch person, /quit to leave."
)


async def run_line(chat: Chat, current: str, line: str, out: Console = console) -> str:
    """Run one line; returns who is typing afterwards."""
    line = line.strip()
    if not line or line.startswith("#"):
        return current
    if line.startswith("/as "):
        words = line.split()[1:]
        if not words:
            out.print("! Say who: /as bob")
            return current
        chat.person(words[0], moderator="mod" in words[1:])
        out.print(f"(you are now {words[0]}{' — moderator' if 'mod' in words[1:] else ''})")
        return words[0]
    out.print(f"[dim]{current}>[/] {line}", markup=True)
    reply = await chat.say(current, line)
    out.print(render(reply), style="red" if reply.error else None, markup=False)
    flush(chat, out)
    return current


def flush(chat: Chat, out: Console = console) -> None:
    """Print DMs and channel posts that arrived since the last prompt."""
    while chat.unread:
        who, text = chat.unread.pop(0)
        label = "channel" if who == "#channel" else f"DM to {who}"
        out.print(f"[cyan]── {label} ──[/]", markup=True)
        out.print(text, markup=False)


async def run_script(chat: Chat, name: str, lines: Iterable[str]) -> None:
    current = name
    for line in lines:
        current = await run_line(chat, current, line)


async def interactive(chat: Chat, name: str, stop: asyncio.Event | None = None) -> None:
    """Read lines from the terminal without blocking the event loop."""
    console.print(BANNER.format(name=name), markup=True)
    current = name
    loop = asyncio.get_running_loop()
    while stop is None or not stop.is_set():
        try:
            line = await loop.run_in_executor(None, _prompt, current)
        except (EOFError, KeyboardInterrupt):
            break
        if line.strip() in {"/quit", "/exit"}:
            break
        current = await run_line(chat, current, line)


def _prompt(name: str) -> str:
    sys.stdout.write(f"{name}> ")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
