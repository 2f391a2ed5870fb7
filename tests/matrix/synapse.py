"""A real Synapse homeserver for the tests: SQLite-backed, on a free loopback port, with
a generated config in a temporary directory (no federation, rate limits relaxed), and
users registered through its admin shared-secret API."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import signedjson.key

SERVER_NAME = "stagepass.test"

_RELAXED = {"per_second": 1000, "burst_count": 1000}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _yaml(value: object) -> str:
    """Synapse's config as YAML (JSON is YAML)."""
    return json.dumps(value, indent=2)


@dataclass
class Synapse:
    """One running homeserver; `start` blocks until /health answers."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    secret: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.port = _free_port()
        self.secret = secrets.token_hex(16)
        key_path = self.directory / "signing.key"
        with key_path.open("w") as out:
            signedjson.key.write_signing_keys(out, [signedjson.key.generate_signing_key("a_1")])
        log_config = self.directory / "log.yaml"
        log_config.write_text(
            _yaml(
                {
                    "version": 1,
                    "formatters": {
                        "plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}
                    },
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "filename": str(self.directory / "homeserver.log"),
                            "formatter": "plain",
                        }
                    },
                    "root": {"level": "WARNING", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        config = {
            "server_name": SERVER_NAME,
            "pid_file": str(self.directory / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {
                "name": "sqlite3",
                "args": {"database": str(self.directory / "homeserver.db")},
            },
            "log_config": str(log_config),
            "media_store_path": str(self.directory / "media"),
            "signing_key_path": str(key_path),
            "registration_shared_secret": self.secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "enable_registration": False,
            **{
                name: _RELAXED
                for name in (
                    "rc_message",
                    "rc_registration",
                    "rc_joins_per_room",
                    "rc_3pid_validation",
                    "rc_invites",
                    "rc_presence",
                    "rc_delayed_event_mgmt",
                )
            },
            "rc_login": {"address": _RELAXED, "account": _RELAXED, "failed_attempts": _RELAXED},
            "rc_joins": {"local": _RELAXED, "remote": _RELAXED},
            "rc_admin_redaction": _RELAXED,
            "rc_key_requests": _RELAXED,
        }
        path = self.directory / "homeserver.yaml"
        path.write_text(_yaml(config))
        return path

    def start(self, deadline: float = 60.0) -> None:
        config = self.write_config()
        # the child keeps its own copy of the log's descriptor; ours closes at once
        with (self.directory / "stdout.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(config)],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited at start: {self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a child process's port: no event to wait on
        self.stop()
        raise RuntimeError(f"Synapse did not answer /health within {deadline:.0f} s")

    def tail(self) -> str:
        text = ""
        for name in ("stdout.log", "homeserver.log"):
            path = self.directory / name
            if path.exists():
                text += path.read_text(errors="replace")[-2000:]
        return text

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def register(self, localpart: str, password: str, *, admin: bool = False) -> dict[str, str]:
        """A user through the shared-secret admin API; its login (user_id, access_token,
        device_id)."""
        url = self.url + "/_synapse/admin/v1/register"
        nonce = httpx.get(url, timeout=10).json()["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        parts = (nonce, localpart, password, "admin" if admin else "notadmin")
        mac.update(b"\x00".join(part.encode() for part in parts))
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        response = httpx.post(url, json=body, timeout=30)
        response.raise_for_status()
        login: dict[str, str] = response.json()
        return login
