"""`stagepass run` as the CLI runs it — HTTP app, every registered package, background jobs,
signal handling — with every `DirectMessage` recorded. For the restart and failover tests.

    STAGEPASS_DATA_DIR=... [DATABASE_URL=...] RUNNER_DMS=dms.jsonl python -m tests.scheduler.runner

Each DM is appended to RUNNER_DMS as one fsynced JSON line with this process's pid;
stdout says READY once serving, then OWNER when this process owns the scheduler. The
process's clock is the file RUNNER_CLOCK, which the test moves (`FileClock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

from bot.events import DirectMessage
from bot.logs import configure
from bot.settings import load_settings
from bot.wiring import Stagepass
from scheduler import installed
from tests.scheduler.processes import FileClock


async def main() -> None:
    settings = load_settings()
    configure("info", "console")
    app = await Stagepass.build(settings, clock=FileClock(Path(os.environ["RUNNER_CLOCK"])))
    scheduling = installed(app)
    assert scheduling is not None
    log_path = os.environ["RUNNER_DMS"]

    async def record(message: DirectMessage) -> None:
        line = json.dumps({"pid": os.getpid(), "key": message.identity_key, "text": message.text})
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    app.core.bus.subscribe(DirectMessage, record)

    async def report(stop: asyncio.Event) -> None:
        print("READY", flush=True)
        while not scheduling.is_owner:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.05)
            if stop.is_set():
                return
        if scheduling.is_owner:
            print("OWNER", flush=True)
        await stop.wait()

    await app.run(foreground=report)


if __name__ == "__main__":
    asyncio.run(main())
