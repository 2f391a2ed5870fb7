"""Local services the tests need (PostgreSQL, NATS): found, started, or skipped loudly."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import time
import uuid

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is down; skip loudly if we can't."""
    if _port_open(PG_HOST, PG_PORT):
        return
    versions = sorted(glob.glob("/etc/postgresql/*"))
    if versions:
        version = os.path.basename(versions[-1])
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        for _ in range(50):
            if _port_open(PG_HOST, PG_PORT):
                return
            time.sleep(0.2)
    pytest.skip(
        f"PostgreSQL is not running on {PG_HOST}:{PG_PORT} and could not be started "
        "(pg_ctlcluster); PostgreSQL tests did NOT run"
    )


def fresh_postgres_database() -> tuple[str, str]:
    """Create an empty database; returns (asyncpg URL, name). Caller drops it."""
    ensure_postgres()
    name = f"sp_{uuid.uuid4().hex[:12]}"
    _psql(f'CREATE DATABASE "{name}"')
    return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}", name


def drop_postgres_database(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(sql: str) -> None:
    result = subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"PostgreSQL refused {sql!r}: {result.stderr.strip()}; tests did NOT run")


NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"
NATS_SERVER = "/usr/sbin/nats-server"


def start_nats(host: str = NATS_HOST, port: int = NATS_PORT) -> str | None:
    """Start the machine's nats-server if it is down (when it is meant to be on ``host``:
    ``port``, this machine's); its URL, or None if it is not up and could not be started.
    Also used by bench/audio_edges.py."""
    url = f"nats://{host}:{port}"
    if _port_open(host, port):
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
        for _ in range(50):
            if _port_open(host, port):
                return url
            time.sleep(0.2)
    return None


def ensure_nats() -> str:
    """Start the machine's nats-server if it is down; its URL, or skip loudly if we can't."""
    url = start_nats()
    if url is not None:
        return url
    pytest.skip(
        f"NATS is not running on {NATS_HOST}:{NATS_PORT} and could not be started "
        f"({NATS_SERVER} via start-stop-daemon); NATS audio edge tests did NOT run"
    )
