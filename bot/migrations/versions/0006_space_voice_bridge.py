"""spaces.voice_bridge: whether a Space's Discord channel is bridged into its room

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voice_bridge', sa.Enum('default', 'off', 'listen', 'speak', name='bridgemode', native_enum=False, length=16), server_default='default', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.drop_column('voice_bridge')
