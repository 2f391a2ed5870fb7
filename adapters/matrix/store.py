"""The bot's end-to-end encryption store: nio's own (Olm account, sessions, room keys,
devices), in SQLite's WAL mode. Imported only where the crypto extra is installed."""

from __future__ import annotations

from nio.store.database import DefaultStore
from peewee import SqliteDatabase


class Store(DefaultStore):  # type: ignore[misc]  # nio ships no type information
    """nio writes its store on every sync and while it encrypts, on the event loop; with
    the default rollback journal each commit is an fsync, which cost the first encrypted
    answer a few hundred ms here. WAL with synchronous=NORMAL: a crash of the bot loses
    nothing, a power cut may lose the last commits (those room keys are then asked for or
    re-sent as for a new session)."""

    def _create_database(self) -> SqliteDatabase:
        return SqliteDatabase(
            self.database_path,
            pragmas={
                "foreign_keys": 1,
                "secure_delete": 1,
                "journal_mode": "wal",
                "synchronous": 1,  # NORMAL
            },
        )
