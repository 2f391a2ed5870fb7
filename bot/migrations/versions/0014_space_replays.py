"""spaces.replay_days and spaces.replays_deleted_at: a host's replay window

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 00:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.models


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on every database: a batch rebuild on SQLite would drop `spaces`
    # (which holds and tickets point at) and move its column CHECKs (see 0009)
    op.add_column('spaces', sa.Column('replay_days', sa.Integer(), nullable=True))
    op.add_column(
        'spaces',
        sa.Column('replays_deleted_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE spaces DROP COLUMN replays_deleted_at")
        op.execute("ALTER TABLE spaces DROP COLUMN replay_days")
    else:
        op.drop_column('spaces', 'replays_deleted_at')
        op.drop_column('spaces', 'replay_days')
