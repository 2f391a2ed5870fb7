"""Files only the owner may read: the data directory (0700) and what Stagepass writes
into it (0600) — the SQLite database, the log, recordings and key files — whatever the
process's umask.

Key files (`signing.key`, `api-token`, `encryption.key`, ...) are created race-free: the
value is written to a private temporary file that is then hard-linked to its final name,
so a second process starting at the same moment either wins or reads the first one's
complete file, never an empty or half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and any missing parents, each 0700) and make `path` itself 0700.

    Call it only for directories Stagepass owns (the data directory, recordings): an
    existing one is tightened too, since old installs made them 0755."""
    missing: list[Path] = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def parent_dir(path: Path) -> Path:
    """`path`'s directory, created 0700 when missing; an existing one is left as it is (it
    may not be Stagepass's own: a database or lock file the operator put elsewhere)."""
    if not path.parent.exists():
        private_dir(path.parent)
    return path.parent


def private_file(path: Path) -> Path:
    """Make sure `path` exists and only its owner may read or write it (an existing file
    keeps its content). SQLite gives the `-wal` and `-shm` files it creates the database
    file's mode, so a database created through here stays private as it grows."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten(path: Path) -> None:
    """0600 for a file that may already exist from an older run (left alone if absent)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, made by `make()` and stored there (0600) on first use.

    Two processes may start at once: each writes its own temporary file and links it to
    `path`; the loser gets `FileExistsError` and reads the winner's value."""
    if path.exists():
        return path.read_text().strip()
    private_dir(path.parent)
    value = make()
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:  # mkstemp creates it 0600
            fh.write(value + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(temp)
    return value
