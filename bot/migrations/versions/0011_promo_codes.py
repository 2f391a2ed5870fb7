"""promo_codes and promo_redemptions: discount codes for a Space, counted per ticket

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:55:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('promo_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('percent_off', sa.Integer(), nullable=False),
    sa.Column('amount_off_minor', sa.Integer(), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('until', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('uses >= 0 AND uses <= max_uses', name='ck_promo_uses'),
    sa.ForeignKeyConstraint(['created_by'], ['identities.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('space_id', 'code', name='uq_promo_code')
    )
    with op.batch_alter_table('promo_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promo_codes_space_id'), ['space_id'], unique=False)

    op.create_table('promo_redemptions',
    sa.Column('hold_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('promo_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.ForeignKeyConstraint(['promo_id'], ['promo_codes.id'], ),
    sa.PrimaryKeyConstraint('hold_id')
    )
    with op.batch_alter_table('promo_redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promo_redemptions_promo_id'), ['promo_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('promo_redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promo_redemptions_promo_id'))
    op.drop_table('promo_redemptions')
    with op.batch_alter_table('promo_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promo_codes_space_id'))
    op.drop_table('promo_codes')
