"""`stagepass shell`: type commands as someone, see replies, DMs and the channel.

`/as bob` switches identity (`/as bob mod` as a moderator); `/quit` leaves. With
`--script FILE` or piped input every line runs in turn and every reply is printed.

At a terminal the lines are read by the event loop itself (no thread blocked on stdin),
so Ctrl-C or a stop stops the chat at once, and DMs and channel posts print as they
arrive, above a fresh prompt. The terminal echoes what is typed: it is not printed again.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable

from rich.console import Console

from adapters.shell.chat import Chat, render
from bot.commands.grammar import Usage

console = Console(highlight=False, soft_wrap=True)

BANNER = (
    "Stagepass shell — you are [bold]{name}[/]. Type /help for commands, "
    "/as NAME \\[mod] to switch person, /quit to leave."
)

#: The shell's own commands, shown by /help after the core's.
SHELL_USAGES = (
    Usage("as", "/as NAME [mod]", "Type as someone else from now on (mod: as a moderator)."),
    Usage("quit", "/quit", "Leave the chat (Ctrl-D too; Ctrl-C stops Stagepass)."),
)
_QUIT = {"/quit", "/exit"}


async def run_line(
    chat: Chat, current: str, line: str, out: Console = console, *, echo: bool = True
) -> str:
    """Run one line; returns who is typing afterwards. `echo`: print the line first (a
    script's lines; at a terminal the person already sees what they typed)."""
    line = line.strip()
    if not line or line.startswith("#"):
        return current
    if line == "/as" or line.startswith("/as "):
        words = line.split()[1:]
        if not words:
            out.print("! Say who: /as bob")
            return current
        chat.person(words[0], moderator="mod" in words[1:])
        out.print(f"(you are now {words[0]}{' — moderator' if 'mod' in words[1:] else ''})")
        return words[0]
    if echo:
        out.print(f"[dim]{current}>[/] {line}", markup=True)
    words = line.lower().split()
    own = {u.path: u for u in SHELL_USAGES}
    if words[0] == "/help" and len(words) == 2 and words[1].lstrip("/") in own:
        out.print(own[words[1].lstrip("/")].details(), markup=False)
        return current
    reply = await chat.say(current, line)
    text = render(reply)
    if words == ["/help"]:
        text += "\n" + "\n".join(f"{u.usage}\n    {u.summary}" for u in SHELL_USAGES)
    out.print(text, style="red" if reply.error else None, markup=False)
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


class _Lines:
    """Lines typed on a terminal, read when the event loop sees them ready: nothing blocks,
    so waiting for one can be abandoned at any moment. `None` is the end (Ctrl-D)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._buffer = b""
        self._loop = asyncio.get_running_loop()

    def __enter__(self) -> _Lines:
        self._loop.add_reader(self.fd, self._readable)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.remove_reader(self.fd)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the terminal went away
            data = b""
        if not data:
            self._loop.remove_reader(self.fd)
            self.queue.put_nowait(None)
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self.queue.put_nowait(line.decode(errors="replace"))


async def interactive(chat: Chat, name: str, stop: asyncio.Event | None = None) -> None:
    """Chat at the terminal until /quit, Ctrl-D or `stop`; what arrives meanwhile prints
    at once above a fresh prompt."""
    stop = stop or asyncio.Event()
    arrived = asyncio.Event()
    console.print(BANNER.format(name=name), markup=True)
    current = name
    chat.on_unread = arrived.set
    stopping = asyncio.create_task(stop.wait(), name="shell-stop")
    try:
        with _Lines(sys.stdin.fileno()) as lines:
            flush(chat)
            _prompt(current)
            while not stop.is_set():
                arrived.clear()
                reading = asyncio.create_task(lines.queue.get(), name="shell-line")
                news = asyncio.create_task(arrived.wait(), name="shell-news")
                await asyncio.wait({reading, stopping, news}, return_when=asyncio.FIRST_COMPLETED)
                typed = reading.done()
                news.cancel()
                reading.cancel()  # a line not yet taken stays in the queue
                await asyncio.gather(reading, news, return_exceptions=True)
                if not typed:
                    if chat.unread and not stop.is_set():
                        sys.stdout.write("\r\x1b[K")  # the prompt's line gives way to the news
                        flush(chat)
                        _prompt(current)
                    continue
                line = reading.result()
                if line is None or line.strip() in _QUIT:
                    break
                current = await run_line(chat, current, line, echo=False)
                _prompt(current)
    finally:
        chat.on_unread = None
        stopping.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        sys.stdout.write("\n")
        sys.stdout.flush()


def _prompt(name: str) -> None:
    sys.stdout.write(f"{name}> ")
    sys.stdout.flush()
