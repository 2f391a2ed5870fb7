"""discord_stage_locks: one live Space per Discord Stage channel

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 21:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('discord_stage_locks',
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('guild_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('everyone_before', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('locked_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('channel_id')
    )
    with op.batch_alter_table('discord_stage_locks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discord_stage_locks_space_id'), ['space_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('discord_stage_locks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_discord_stage_locks_space_id'))

    op.drop_table('discord_stage_locks')
