"""discord: announcement messages, scheduled events and ticket roles per Space; role changes to retry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('discord_spaces',
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('guild_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('role_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('stage_channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('role_alert', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('space_id')
    )
    with op.batch_alter_table('discord_spaces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discord_spaces_guild_id'), ['guild_id'], unique=False)

    op.create_table('discord_role_tasks',
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('space_id', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('discord_role_tasks')
    with op.batch_alter_table('discord_spaces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_discord_spaces_guild_id'))

    op.drop_table('discord_spaces')
