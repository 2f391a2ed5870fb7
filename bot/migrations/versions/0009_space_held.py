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


def upgrade() -> None:
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held", sa.Integer(), server_default="0", nullable=False))
    op.execute(f"UPDATE spaces SET held = {_ACTIVE_SEATS}")
    op.execute("UPDATE spaces SET sold = sold - held")
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.create_check_constraint("ck_space_held", "held >= 0 AND sold + held <= capacity")


def downgrade() -> None:
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_constraint("ck_space_held", type_="check")
    op.execute("UPDATE spaces SET sold = sold + held")
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_column("held")
