"""`stagepass run` as an operator starts it: ready line, health, API, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TZ"}}
    return {
        **keep,
        "STAGEPASS_DATA_DIR": str(tmp_path / "data"),
        "STAGEPASS_HTTP_PORT": str(port),
        "STAGEPASS_LOG_FORMAT": "json",
    }


def test_run_serves_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=_env(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # blocks until the ready line (or exit)
        assert f"ready at http://127.0.0.1:{port}" in ready, (ready, proc.poll())
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        token = (tmp_path / "data" / "api-token").read_text().strip()
        assert httpx.get(f"{base}/api/v1/spaces", timeout=5).status_code == 401
        listed = httpx.get(
            f"{base}/api/v1/spaces", timeout=5, headers={"Authorization": f"Bearer {token}"}
        )
        assert listed.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    _, stderr = proc.communicate(timeout=10)
    assert "Stagepass stopped" in stderr
    assert token not in stderr  # secrets never reach the log


def test_shell_script_runs_every_line(tmp_path: Path) -> None:
    script = tmp_path / "story.txt"
    script.write_text(
        '/space create title:"Demo" starts:"tomorrow 18:00" tickets:2\n'
        "/as bob\n/ticket buy 1\n/ticket show\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "--as", "alice", "--script", str(script)],
        cwd=tmp_path,
        env=_env(tmp_path, _free_port()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Space #1 is announced" in out
    assert "You're in!" in out
    assert "DM to bob" in out and "#token=" in out
