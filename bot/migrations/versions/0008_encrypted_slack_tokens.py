"""slack_installations: bot tokens encrypted at rest (Fernet), columns wide enough for them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 19:00:00.000000

The key comes the way the app gets it (bot/encryption.py): `Database.migrate` passes the
app's, and the `alembic` command reads the settings (STAGEPASS_ENCRYPTION_KEY, else
DATA_DIR/encryption.key). It is only asked for when a row needs it.
"""
from alembic import context, op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_COLUMNS = ('bot_token', 'bot_refresh_token')
_table = sa.table('slack_installations', sa.column('id', sa.Integer()),
                  *(sa.column(name, sa.String()) for name in _COLUMNS))


def _cipher():
    factory = context.config.attributes.get('cipher')
    if factory is None:
        from bot.encryption import settings_cipher
        from bot.settings import load_settings

        return settings_cipher(load_settings())
    return factory()


def _rewrite(change) -> None:
    """Apply `change(cipher, value)` to every stored token it alters."""
    conn = op.get_bind()
    rows = conn.execute(sa.select(_table)).mappings().all()
    cipher = None
    for row in rows:
        if cipher is None:
            cipher = _cipher()
        values = {name: change(cipher, row[name]) for name in _COLUMNS if row[name] is not None}
        values = {name: value for name, value in values.items() if value != row[name]}
        if values:
            conn.execute(sa.update(_table).where(_table.c.id == row['id']).values(**values))


def upgrade() -> None:
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.alter_column('bot_token', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), type_=sqlmodel.sql.sqltypes.AutoString(length=1000), existing_nullable=False)
        batch_op.alter_column('bot_refresh_token', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), type_=sqlmodel.sql.sqltypes.AutoString(length=1000), existing_nullable=True)
    _rewrite(lambda cipher, value: value if cipher.is_encrypted(value) else cipher.encrypt(value))


def downgrade() -> None:
    _rewrite(lambda cipher, value: cipher.decrypt(value))
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.alter_column('bot_token', existing_type=sqlmodel.sql.sqltypes.AutoString(length=1000), type_=sqlmodel.sql.sqltypes.AutoString(length=255), existing_nullable=False)
        batch_op.alter_column('bot_refresh_token', existing_type=sqlmodel.sql.sqltypes.AutoString(length=1000), type_=sqlmodel.sql.sqltypes.AutoString(length=255), existing_nullable=True)
