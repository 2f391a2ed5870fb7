"""waitlist_entries, invite_links, invite_redemptions, stage_invites and spaces.visibility

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 00:23:35.032130
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('invite_links',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('uses >= 0 AND uses <= max_uses', name='ck_invite_uses'),
    sa.ForeignKeyConstraint(['created_by'], ['identities.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('invite_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invite_links_space_id'), ['space_id'], unique=False)

    op.create_table('stage_invites',
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=False),
    sa.Column('invited_by', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], ),
    sa.ForeignKeyConstraint(['invited_by'], ['identities.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('space_id', 'identity_id')
    )
    op.create_table('invite_redemptions',
    sa.Column('hold_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('invite_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.ForeignKeyConstraint(['invite_id'], ['invite_links.id'], ),
    sa.PrimaryKeyConstraint('hold_id')
    )
    with op.batch_alter_table('invite_redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invite_redemptions_invite_id'), ['invite_id'], unique=False)

    op.create_table('waitlist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('waiting', 'offered', 'left', name='waitliststatus', native_enum=False, length=16), nullable=False),
    sa.Column('joined_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('offered_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hold_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waitlist_entries_identity_id'), ['identity_id'], unique=False)
        batch_op.create_index('ix_waitlist_line', ['space_id', 'status', 'id'], unique=False)
        batch_op.create_index('uq_waitlist_waiting', ['space_id', 'identity_id'], unique=True, sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))

    # no table rebuild on SQLite: a rebuild drops `spaces`, which other tables point at
    op.add_column('spaces', sa.Column('visibility', sa.Enum('public', 'invite', name='visibility', native_enum=False, length=16), server_default='public', nullable=False))



def downgrade() -> None:
    op.drop_column('spaces', 'visibility')

    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.drop_index('uq_waitlist_waiting', sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))
        batch_op.drop_index('ix_waitlist_line')
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_identity_id'))

    op.drop_table('waitlist_entries')
    with op.batch_alter_table('invite_redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invite_redemptions_invite_id'))

    op.drop_table('invite_redemptions')
    op.drop_table('stage_invites')
    with op.batch_alter_table('invite_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invite_links_space_id'))

    op.drop_table('invite_links')
