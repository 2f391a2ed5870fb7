"""invite_links.revoked_at: a host withdraws an invite link

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.models


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on every database: a batch rebuild on SQLite would drop
    # `invite_links`, which invite_redemptions points at (as 0014 does for spaces)
    op.add_column(
        'invite_links',
        sa.Column('revoked_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE invite_links DROP COLUMN revoked_at")
    else:
        op.drop_column('invite_links', 'revoked_at')
