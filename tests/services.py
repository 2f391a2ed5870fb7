"""Local services the tests need (PostgreSQL, NATS): found, started, or skipped loudly.
NATS is started by `bench.services`, which the benches use too."""

from __future__ import annotations

import glob
import os
import subprocess
import uuid

import pytest

from bench.services import NATS_HOST, NATS_PORT, NATS_SERVER, port_open, start_nats, wait_for_port

PG_HOST, PG_PORT = "127.0.0.1", 5432


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is down; skip loudly if we can't."""
    if port_open(PG_HOST, PG_PORT):
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
        if wait_for_port(PG_HOST, PG_PORT):
            return
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


def ensure_nats() -> str:
    """Start the machine's nats-server if it is down; its URL, or skip loudly if we can't."""
    url = start_nats()
    if url is not None:
        return url
    pytest.skip(
        f"NATS is not running on {NATS_HOST}:{NATS_PORT} and could not be started "
        f"({NATS_SERVER} via start-stop-daemon); NATS audio edge tests did NOT run"
    )
