"""`stagepass shell`: type commands as someone, see replies, DMs and the channel.

`/as bob` switches identity (`/as bob mod` as a moderator); `/quit` leaves. With
`--script FILE` or piped input every line runs in turn and every reply is printed.

At a terminal the lines are read by the event loop itself (no thread blocked on stdin),
so Ctrl-C or a stop stops the chat at once, and DMs and channel posts print as they
arrive, above the prompt and what is half typed. A typed line is shown once, as typed.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import sys
import termios
import tty
from collections.abc import Iterable
from typing import Any

from rich.console import Console

from adapters.shell.chat import Chat, render
from bot.commands.grammar import USAGES, Usage, did_you_mean

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
_CORE_COMMANDS = {u.path.split()[0] for u in USAGES}


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
        mod = " — moderator" if "mod" in words[1:] else ""
        out.print(f"(you are now {words[0]}{mod})", markup=False)
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
    name = words[0].lstrip("/")
    if reply.error and name not in _CORE_COMMANDS and (hint := did_you_mean(name, own, "/{}")):
        text += hint  # /qiut: the shell's own commands are not the core's to suggest
    if words == ["/help"]:
        text += "\n" + "\n".join(u.brief() for u in SHELL_USAGES)
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
    """Lines typed at a terminal, read when the event loop sees input ready: nothing blocks,
    so waiting for a line can be abandoned at any moment. `None` is the end (Ctrl-D).

    The terminal is put in cbreak mode and the line is edited here (typing, Backspace,
    Ctrl-U; other keys are ignored), so what is half typed can be drawn again after a DM
    is printed. Ctrl-C still reaches the process as SIGINT."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.typed = ""
        """The line being typed (not yet ended with Enter)."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._escape = False
        self._after_cr = False
        self._saved: list[Any] | None = None
        self._loop = asyncio.get_running_loop()

    def __enter__(self) -> _Lines:
        if os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        self._loop.add_reader(self.fd, self._readable)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.remove_reader(self.fd)
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the terminal went away
            data = b""
        if not data:
            self._end()
            return
        echo = []
        for char in self._decoder.decode(data):
            after_cr, self._after_cr = self._after_cr, char == "\r"
            if char == "\n" and after_cr:  # CR LF is one Enter
                continue
            if self._escape:  # an arrow or function key: ESC [ ... up to a letter or ~
                self._escape = not (char.isalpha() or char == "~")
            elif char == "\x1b":
                self._escape = True
            elif char in "\r\n":
                echo.append("\r\n")
                self.queue.put_nowait(self.typed)
                self.typed = ""
            elif char in "\x7f\x08":
                if self.typed:
                    self.typed = self.typed[:-1]
                    echo.append("\b \b")
            elif char == "\x15":  # Ctrl-U
                echo.append("\b \b" * len(self.typed))
                self.typed = ""
            elif char == "\x04":  # Ctrl-D: the end on an empty line
                if not self.typed:
                    self._end()
                    return
            elif char.isprintable():
                self.typed += char
                echo.append(char)
        if echo and self._saved is not None:
            sys.stdout.write("".join(echo))
            sys.stdout.flush()

    def _end(self) -> None:
        self._loop.remove_reader(self.fd)
        self.queue.put_nowait(None)


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
                        _prompt(current, lines.typed)
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


def _prompt(name: str, typed: str = "") -> None:
    sys.stdout.write(f"{name}> {typed}")
    sys.stdout.flush()
