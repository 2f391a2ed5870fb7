"""slack: workspace installations (OAuth), OAuth states, announcement messages per Space

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('slack_installations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('app_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('enterprise_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('enterprise_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('team_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('bot_token', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('bot_refresh_token', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('bot_token_expires_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('bot_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('bot_user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('bot_scopes', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('installer_user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('announce_channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('installed_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('enterprise_id', 'team_id', name='uq_slack_installation')
    )
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_installations_team_id'), ['team_id'], unique=False)

    op.create_table('slack_oauth_states',
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('expires_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )
    with op.batch_alter_table('slack_oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_oauth_states_expires_at'), ['expires_at'], unique=False)

    op.create_table('slack_announcements',
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('posted_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('space_id')
    )
    with op.batch_alter_table('slack_announcements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_announcements_team_id'), ['team_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slack_announcements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_announcements_team_id'))

    op.drop_table('slack_announcements')
    with op.batch_alter_table('slack_oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_oauth_states_expires_at'))

    op.drop_table('slack_oauth_states')
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_installations_team_id'))

    op.drop_table('slack_installations')
