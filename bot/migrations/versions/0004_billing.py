"""billing (Stripe): events, checkouts, refunds, connected accounts, tips, dev objects

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 06:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_dev_objects',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('object', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_billing_dev_objects_created'), 'billing_dev_objects', ['created'], unique=False)
    op.create_index(op.f('ix_billing_dev_objects_object'), 'billing_dev_objects', ['object'], unique=False)
    op.create_table('billing_events',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('object_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('received_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('billing_accounts',
    sa.Column('identity_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('charges_enabled', sa.Boolean(), nullable=False),
    sa.Column('payouts_enabled', sa.Boolean(), nullable=False),
    sa.Column('details_submitted', sa.Boolean(), nullable=False),
    sa.Column('currently_due', sa.JSON(), nullable=False),
    sa.Column('disabled_reason', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], ),
    sa.PrimaryKeyConstraint('identity_id'),
    sa.UniqueConstraint('account_id')
    )
    op.create_table('billing_tips',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tipper_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('fee_minor', sa.Integer(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'paid', 'expired', name='tipstatus', native_enum=False, length=16), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['identities.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ),
    sa.ForeignKeyConstraint(['tipper_id'], ['identities.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_billing_tips_host_id'), 'billing_tips', ['host_id'], unique=False)
    op.create_index(op.f('ix_billing_tips_tipper_id'), 'billing_tips', ['tipper_id'], unique=False)
    op.create_table('billing_checkouts',
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('kind', sa.Enum('ticket', 'tip', name='checkoutkind', native_enum=False, length=16), nullable=False),
    sa.Column('hold_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('tip_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('fee_minor', sa.Integer(), nullable=False),
    sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('status', sa.Enum('open', 'paid', 'expired', name='checkoutstatus', native_enum=False, length=16), nullable=False),
    sa.Column('payment_intent_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('charge_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('test_mode', sa.Boolean(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(kind = 'ticket' AND hold_id IS NOT NULL AND tip_id IS NULL) OR (kind = 'tip' AND tip_id IS NOT NULL AND hold_id IS NULL)", name='ck_billing_checkout_kind'),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.ForeignKeyConstraint(['tip_id'], ['billing_tips.id'], ),
    sa.PrimaryKeyConstraint('session_id'),
    sa.UniqueConstraint('charge_id'),
    sa.UniqueConstraint('hold_id'),
    sa.UniqueConstraint('payment_intent_id'),
    sa.UniqueConstraint('tip_id')
    )
    op.create_index('ix_billing_checkouts_status_created', 'billing_checkouts', ['status', 'created_at'], unique=False)
    op.create_table('billing_refunds',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('hold_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('payment_intent_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', name='refundstatus', native_enum=False, length=16), nullable=False),
    sa.Column('refund_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('key'),
    sa.UniqueConstraint('ticket_id')
    )
    op.create_index(op.f('ix_billing_refunds_hold_id'), 'billing_refunds', ['hold_id'], unique=False)
    op.create_index(op.f('ix_billing_refunds_payment_intent_id'), 'billing_refunds', ['payment_intent_id'], unique=False)
    op.create_index(op.f('ix_billing_refunds_status'), 'billing_refunds', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_billing_refunds_status'), table_name='billing_refunds')
    op.drop_index(op.f('ix_billing_refunds_payment_intent_id'), table_name='billing_refunds')
    op.drop_index(op.f('ix_billing_refunds_hold_id'), table_name='billing_refunds')
    op.drop_table('billing_refunds')
    op.drop_index('ix_billing_checkouts_status_created', table_name='billing_checkouts')
    op.drop_table('billing_checkouts')
    op.drop_index(op.f('ix_billing_tips_tipper_id'), table_name='billing_tips')
    op.drop_index(op.f('ix_billing_tips_host_id'), table_name='billing_tips')
    op.drop_table('billing_tips')
    op.drop_table('billing_accounts')
    op.drop_table('billing_events')
    op.drop_index(op.f('ix_billing_dev_objects_object'), table_name='billing_dev_objects')
    op.drop_index(op.f('ix_billing_dev_objects_created'), table_name='billing_dev_objects')
    op.drop_table('billing_dev_objects')
