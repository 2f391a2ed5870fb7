"""spaces.replay_days and spaces.replays_deleted_at: a host's replay window

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-06 00:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.models


revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_days', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('replays_deleted_at', bot.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.drop_column('replays_deleted_at')
        batch_op.drop_column('replay_days')
