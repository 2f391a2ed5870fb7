"""spaces.held: seats held for unpaid buyers, counted apart from `sold`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 21:45:00.000000

Until now `sold` counted valid tickets and active holds together. From here `sold` is
valid tickets only and `held` the seats of active holds; the capacity rule reads
`sold + held <= capacity`. Existing rows are split by their active holds.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ACTIVE_SEATS = (
    "COALESCE((SELECT SUM(holds.quantity) FROM holds"
    " WHERE holds.space_id = spaces.id AND holds.status = 'active'), 0)"
)


_CHECK = "held >= 0 AND sold + held <= capacity"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        # a column CHECK may name other columns in SQLite, and adding one needs no table
        # rebuild (a rebuild drops `spaces`, which holds and tickets point at)
        op.execute(
            "ALTER TABLE spaces ADD COLUMN held INTEGER DEFAULT '0' NOT NULL"
            f" CONSTRAINT ck_space_held CHECK ({_CHECK})"
        )
    else:
        op.add_column("spaces", sa.Column("held", sa.Integer(), server_default="0", nullable=False))
    # one statement: the checks see the row with both columns moved
    op.execute(f"UPDATE spaces SET held = {_ACTIVE_SEATS}, sold = sold - {_ACTIVE_SEATS}")
    if not _sqlite():
        op.create_check_constraint("ck_space_held", "spaces", _CHECK)


def downgrade() -> None:
    op.execute("UPDATE spaces SET sold = sold + held, held = 0")
    if _sqlite():
        op.execute("ALTER TABLE spaces DROP COLUMN held")  # takes its column CHECK along
    else:
        op.drop_constraint("ck_space_held", "spaces", type_="check")
        op.drop_column("spaces", "held")
