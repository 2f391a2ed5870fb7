"""outbox: direct messages kept until their platform's adapter delivers them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.Enum('discord', 'slack', 'shell', name='platform', native_enum=False, length=16), nullable=False),
    sa.Column('identity_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'refused', 'gave_up', name='outboxstatus', native_enum=False, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_due', ['status', 'platform', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_due')

    op.drop_table('outbox_messages')
