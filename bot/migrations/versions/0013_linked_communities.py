"""community_links, community_link_codes, space_communities: one Space across communities

Revision ID: 0013
Revises: 0015
Create Date: 2026-12-06 00:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0013'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('community_links',
    sa.Column('first_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('second_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('linked_by', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('first_id < second_id', name='ck_community_link_order'),
    sa.ForeignKeyConstraint(['first_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['second_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['linked_by'], ['identities.id'], ),
    sa.PrimaryKeyConstraint('first_id', 'second_id')
    )
    op.create_table('community_link_codes',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('community_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('expires_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['identities.id'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('community_link_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_community_link_codes_expires_at'), ['expires_at'], unique=False)

    op.create_table('space_communities',
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('space_id', 'community_id')
    )
    with op.batch_alter_table('space_communities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_space_communities_community_id'), ['community_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('space_communities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_space_communities_community_id'))
    op.drop_table('space_communities')
    with op.batch_alter_table('community_link_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_community_link_codes_expires_at'))
    op.drop_table('community_link_codes')
    op.drop_table('community_links')
