"""slot_series.visibility: a slot's Spaces are listed or invite-only, as /slot add said

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 10:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on every database: a batch rebuild on SQLite would drop
    # `slot_series`, which slot_occurrences points at (as 0017 does for invite_links)
    op.add_column(
        'slot_series',
        sa.Column(
            'visibility',
            sa.Enum('public', 'invite', name='visibility', native_enum=False, length=16),
            server_default='public',
            nullable=False,
        ),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE slot_series DROP COLUMN visibility")
    else:
        op.drop_column('slot_series', 'visibility')
