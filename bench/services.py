"""The machine's local services that benchmarks and tests start when they are down: here,
NATS (the audio edges' bus). The tests' wrappers (tests/services.py) skip loudly where
this returns None; the benches stop loudly."""

from __future__ import annotations

import os
import socket
import subprocess
import time

NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_SERVER = "/usr/sbin/nats-server"


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, tries: int = 50) -> bool:
    """Whether `host:port` answers within about `tries` fifths of a second (a service just
    started takes a moment)."""
    for _ in range(tries):
        if port_open(host, port):
            return True
        time.sleep(0.2)
    return False


def start_nats(host: str = NATS_HOST, port: int = NATS_PORT) -> str | None:
    """Start the machine's nats-server if it is down (when it is meant to be on ``host``:
    ``port``, this machine's); its URL, or None if it is not up and could not be started."""
    url = f"nats://{host}:{port}"
    if port_open(host, port):
        return url
    if (host, port) == (NATS_HOST, NATS_PORT) and os.path.exists(NATS_SERVER):
        subprocess.run(
            [
                "start-stop-daemon", "--start", "--oknodo", "--background",
                "--exec", NATS_SERVER, "--",
                "-a", NATS_HOST, "-p", str(NATS_PORT),
                "-js", "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log",
            ],
            check=False,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        if wait_for_port(host, port):
            return url
    return None
