"""The migration chain: one head, and the schema it builds is the one the models describe;
each package's tables live in its own `models` module and Alembic's env sees them all."""

from __future__ import annotations

import json
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import bot.models  # noqa: F401  (registers the core's tables)
from bot.db import MIGRATIONS, Database
from bot.host import load_models

load_models()  # every package's tables, as Alembic's env loads them

OWNERS = {
    "bot.models": {
        "audit_log", "buyer_quotas", "communities", "holds", "identities",
        "outbox_messages", "reminders", "space_cohosts", "spaces", "stage_members",
        "tickets", "promo_codes", "promo_redemptions",
        "waitlist_entries", "invite_links", "invite_redemptions", "stage_invites",
        "community_links", "community_link_codes", "space_communities",
    },
    "scheduler.models": {
        "apscheduler_jobs", "reminder_deliveries", "slot_occurrences", "slot_series",
    },
    "adapters.discord.models": {"discord_role_tasks", "discord_spaces", "discord_stage_locks"},
    "billing.models": {
        "billing_accounts", "billing_checkouts", "billing_dev_objects", "billing_events",
        "billing_refunds", "billing_tips",
    },
    "adapters.slack.models": {"slack_announcements", "slack_installations", "slack_oauth_states"},
    "adapters.matrix.models": {"matrix_announcements", "matrix_direct_rooms"},
}  # fmt: skip
"""Which module declares which table: the 38 tables the migrations up to 0014 build."""

_REGISTERED_BY_EACH = """
import importlib, json, sys
from sqlmodel import SQLModel
seen, out = set(), {}
for name in sys.argv[1:]:
    importlib.import_module(name)
    out[name] = sorted(set(SQLModel.metadata.tables) - seen)
    seen = set(SQLModel.metadata.tables)
print(json.dumps(out))
"""


def test_one_linear_chain() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    assert len(script.get_heads()) == 1, script.get_heads()
    revisions = list(script.walk_revisions())
    assert all(len(r._all_down_revisions) <= 1 for r in revisions)


async def test_migrated_schema_matches_the_models(sqlite_db: Database) -> None:
    async with sqlite_db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )
    assert diff == []


def test_each_package_declares_its_own_tables() -> None:
    """Imported one after another in a fresh interpreter (the metadata is process-wide),
    the core registers only its own tables and each package's module exactly its own."""
    out = subprocess.run(
        [sys.executable, "-c", _REGISTERED_BY_EACH, *OWNERS],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    registered = {name: set(tables) for name, tables in json.loads(out.stdout).items()}
    assert registered == OWNERS


def test_alembic_env_sees_every_table() -> None:
    assert load_models() == ["billing", "discord", "matrix", "scheduler", "slack"]
    assert set(SQLModel.metadata.tables) >= set().union(*OWNERS.values())


async def test_the_migrations_build_the_same_tables(sqlite_db: Database) -> None:
    async with sqlite_db.engine.connect() as conn:
        built = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    assert built - {"alembic_version"} == set(SQLModel.metadata.tables)
    assert set().union(*OWNERS.values()) <= built
