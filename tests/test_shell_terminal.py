"""`stagepass run --shell` at a real terminal (a pty): Ctrl-C, a busy port, what is echoed,
DMs that arrive while nobody types, and the chat's help. Every wait has a deadline."""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyte
import pytest

from tests.test_cli_run import _env, _free_port

DEADLINE = 60.0
#: The terminal's size: wide and tall enough that nothing wraps or scrolls off.
COLUMNS, ROWS = 200, 3000


def _screen_text(screen: pyte.Screen) -> str:
    """The screen's lines without trailing blanks, but for the blanks the cursor stands
    after (a prompt's "alice> ")."""
    lines = [line.rstrip() for line in screen.display]
    cursor = screen.cursor
    lines[cursor.y] = screen.display[cursor.y][: max(cursor.x, len(lines[cursor.y]))]
    return "\n".join(lines).rstrip("\n")


class Terminal:
    """A process on a pty: type lines, wait for text, send Ctrl-C."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.fd, child = pty.openpty()
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            # a pty answers no cursor-position request, as a real terminal would
            env={
                **env,
                "TERM": "xterm",
                "COLUMNS": str(COLUMNS),
                "PROMPT_TOOLKIT_NO_CPR": "1",
            },
            stdin=child,
            stdout=child,
            stderr=child,
            start_new_session=True,  # its own terminal, as `make run` has
            preexec_fn=lambda: _take_terminal(child),
        )
        os.close(child)
        self._screen = pyte.Screen(COLUMNS, ROWS)
        self._stream = pyte.ByteStream(self._screen)
        self.seen = ""
        """What the terminal shows, as a person reads it: the screen's lines top to bottom.
        The line editor redraws its line in place (a repaint under load): that shows once."""

    def expect(self, text: str, timeout: float = DEADLINE, *, since: int = 0) -> str:
        """Read until `text` shows up (after `since` characters); returns all read so far."""
        end = time.monotonic() + timeout
        while text not in self.seen[since:]:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{text!r} never came; the terminal shows:\n{self.seen}")
        return self.seen

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the process ended and closed the pty
            return False
        self._stream.feed(data)
        self.seen = _screen_text(self._screen)
        return bool(data)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")  # the terminal turns it into SIGINT, as a person's would

    def wait(self, timeout: float = DEADLINE) -> int:
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._read(min(0.5, max(end - time.monotonic(), 0.01)))
        while self._read(0.05):
            pass
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.fd)


def _take_terminal(fd: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    """`stagepass run --shell --as alice` on a free port, at a terminal of its own."""
    terminal = Terminal(
        [sys.executable, "-m", "bot", "run", "--shell", "--as", "alice"],
        tmp_path,
        _env(tmp_path, _free_port()),
    )
    try:
        yield terminal
    finally:
        terminal.close()


def test_ctrl_c_stops_at_once_and_says_stopped(term: Terminal) -> None:
    term.expect("alice> ")
    term.ctrl_c()
    assert term.wait() == 0
    assert "Ctrl-C again to stop at once" in term.seen
    assert "Stagepass stopped." in term.seen
    assert "Traceback" not in term.seen


def test_a_second_ctrl_c_stops_without_waiting_for_requests(tmp_path: Path) -> None:
    """A request still reading its body holds a graceful stop (up to its deadline); the
    second Ctrl-C cancels it."""
    port = _free_port()
    env = {**_env(tmp_path, port), "STAGEPASS_HTTP_BODY_TIMEOUT": "3600"}
    term = Terminal([sys.executable, "-m", "bot", "run", "--shell"], tmp_path, env)
    try:
        term.expect("alice> ")
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as client:
            client.sendall(
                b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            # "100 Continue" comes when the app asks for the body: the request is in flight
            assert client.recv(100).startswith(b"HTTP/1.1 100")
            term.ctrl_c()
            term.expect("Ctrl-C again to stop at once")
            assert term.proc.poll() is None  # still waiting for the request
            term.ctrl_c()
            assert term.wait() == 0
    finally:
        term.close()
    assert "Stagepass stopped." in term.seen and "Traceback" not in term.seen
    log = (tmp_path / "data" / "stagepass.log").read_text()
    assert "Stagepass stopping now" in log and "http-0" in log


def test_commands_echo_once_help_and_typos(term: Terminal) -> None:
    # a line printed above the prompt while it holds input repaints that input: wait for
    # the start-up line first (it came after the prompt once, on a loaded machine)
    term.expect("Stagepass is ready at")
    term.expect("alice> ")
    term.type("/space lsit")
    seen = term.expect("Did you mean /space list?")
    assert seen.count("/space lsit") == 1  # the terminal's echo, not a second copy
    term.type("/help")
    term.expect("/quit\n    Leave the chat")
    assert "/as NAME [mod]" in term.seen
    assert "/as NAME [mod] to switch person" in term.seen  # the banner
    term.type("/help space create")
    term.expect("Example: /space create")
    term.type("/quit")
    assert term.wait() == 0
    assert "Traceback" not in term.seen


def test_a_dm_prints_while_nobody_types(term: Terminal) -> None:
    """bob's ticket comes from the browser's checkout, not from a command: its DM shows
    up at the prompt without anyone pressing Enter."""
    term.expect("alice> ")
    term.type('/space create title:"Paid" starts:"tomorrow 18:00" tickets:2 price:5')
    term.expect("Space #1 is announced")
    term.type("/as bob")
    term.expect("(you are now bob)")
    term.type("/ticket buy 1")
    seen = term.expect("/billing/dev/checkout/")
    match = re.search(r"(http://\S+/billing/dev/checkout/\w+)", seen)
    assert match is not None, seen
    term.expect("bob> ", since=match.end())
    os.write(term.fd, b"/ticket sh")  # half typed when the DM comes
    term.expect("/ticket sh", since=match.end())
    before = term.seen.rindex("bob> /ticket sh")  # the DM is drawn from this line down
    paid = httpx.post(match[1], timeout=30)  # the buyer pays in the browser
    assert paid.status_code == 303, paid.text
    arrived = term.expect("Your ticket for Paid", since=before)[before:]
    assert "── DM to bob ──" in arrived and "#token=" in arrived
    dm_at = term.seen.index("Your ticket for Paid", before)
    term.expect("bob> /ticket sh", since=dm_at)  # the prompt is back with what was typed
    term.type("ow")  # the line sent is the whole "/ticket show"
    term.expect("== Your tickets ==", since=dm_at)
    term.expect("valid) — #1 Paid", since=dm_at)
    assert "Commands start with /" not in term.seen


def test_tab_completes_a_command_and_the_up_arrow_brings_a_line_back(term: Terminal) -> None:
    term.expect("alice> ")
    os.write(term.fd, b"/tic\t")  # Tab: the core's command word
    term.expect("/ticket")
    os.write(term.fd, b" show\r")
    term.expect("You have no valid tickets")
    first = term.seen.index("You have no valid tickets")
    term.expect("alice> ", since=first)
    os.write(term.fd, b"\x1b[A\r")  # Up, Enter: the same line again, from the history
    term.expect("You have no valid tickets", since=first + 1)
    assert "Commands start with /" not in term.seen and "Unknown" not in term.seen


@pytest.mark.parametrize("setting", ["STAGEPASS_HTTP_PORT", "STAGEPASS_METRICS_ADDRESS"])
def test_a_busy_port_is_named_in_the_terminal(tmp_path: Path, setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(tmp_path, port)
        if setting == "STAGEPASS_METRICS_ADDRESS":
            env = {**_env(tmp_path, _free_port()), setting: f"127.0.0.1:{port}"}
        term = Terminal([sys.executable, "-m", "bot", "run", "--shell"], tmp_path, env)
        try:
            code = term.wait()
        finally:
            term.close()
    assert code != 0
    assert f"Port {port} is in use; set {setting}" in term.seen
    assert "Traceback" not in term.seen
    log = tmp_path / "data" / "stagepass.log"
    assert not log.exists() or "Traceback" not in log.read_text()


def test_stagepass_shell_stops_on_ctrl_c_and_gives_the_terminal_back(tmp_path: Path) -> None:
    term = Terminal(
        [sys.executable, "-m", "bot", "shell", "--as", "carol"],
        tmp_path,
        _env(tmp_path, _free_port()),
    )
    try:
        term.expect("carol> ")
        term.type("/qiut")
        term.expect("Did you mean /quit?")
        term.ctrl_c()
        assert term.wait() == 130
        mode = termios.tcgetattr(term.fd)[3]  # the pty's local modes, as carol's shell gets it
    finally:
        term.close()
    assert "stopped" in term.seen and "Traceback" not in term.seen
    assert mode & termios.ICANON and mode & termios.ECHO  # not left in cbreak mode
