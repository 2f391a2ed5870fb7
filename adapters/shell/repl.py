"""`stagepass shell`: type commands as someone, see replies, DMs and the channel.

`/as bob` switches identity (`/as bob mod` as a moderator); `/quit` leaves. With
`--script FILE` or piped input every line runs in turn and every reply is printed.

At a terminal prompt-toolkit reads the lines in the event loop (no thread blocked on
stdin), so Ctrl-C or a stop ends the chat at once, and DMs and channel posts print as
they arrive, above the prompt and what is half typed. A typed line is shown once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import WordCompleter
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
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
_CTRL_C = "\x03"  # what `_line` returns for Ctrl-C (the editor never puts it in a line)


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


def _completer() -> WordCompleter:
    """Command words from the core's grammar and the shell's own (`/space`, `/ticket`…)."""
    words = sorted({f"/{u.path.split()[0]}" for u in (*USAGES, *SHELL_USAGES)})
    return WordCompleter(words, sentence=True)


async def _line(session: PromptSession[str], name: str) -> str | None:
    """One line typed as `name`; `None` at Ctrl-D. The editor reads keys raw, so Ctrl-C
    comes as a key: it is turned back into the SIGINT Stagepass stops on (and not let out
    of a task as KeyboardInterrupt, which would tear the event loop down); `_CTRL_C` says so.
    """
    try:
        return await session.prompt_async(f"{name}> ", handle_sigint=False)
    except EOFError:
        return None
    except KeyboardInterrupt:  # the editor has given the terminal back (cooked) by now
        signal.raise_signal(signal.SIGINT)
        return _CTRL_C


async def interactive(chat: Chat, name: str, stop: asyncio.Event | None = None) -> None:
    """Chat at the terminal until /quit, Ctrl-D or `stop`. prompt-toolkit edits the line
    (Emacs keys, history on the arrows, Tab completes command words); what arrives while
    someone types prints above the prompt, the half-typed line kept."""
    stop = stop or asyncio.Event()
    console.print(BANNER.format(name=name), markup=True)
    session: PromptSession[str] = PromptSession(
        history=InMemoryHistory(), completer=_completer(), complete_while_typing=False
    )
    current = name
    stopping = asyncio.create_task(stop.wait(), name="shell-stop")
    with patch_stdout(raw=True):  # rich's colours pass through; prints land above the prompt
        try:
            flush(chat)
            while not stop.is_set():
                reading = asyncio.create_task(_line(session, current), name="shell-line")
                # news is printed at once only while the prompt waits; a command's own DMs
                # follow its reply (run_line flushes them)
                chat.on_unread = lambda: flush(chat)
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                chat.on_unread = None
                if not reading.done():
                    reading.cancel()
                    await asyncio.gather(reading, return_exceptions=True)
                    break
                line = reading.result()
                if line == _CTRL_C:  # no new prompt: a second Ctrl-C must reach the process
                    await stopping  # as the terminal's SIGINT, not as a key read raw
                    break
                if line is None or line.strip() in _QUIT:
                    break
                current = await run_line(chat, current, line, echo=False)
        finally:
            chat.on_unread = None
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
