"""discord_spaces, discord_role_tasks, slack_announcements, matrix_announcements keyed by
(Space, community): one Space announced in several servers, workspaces or rooms

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06 03:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.models


revision = '0016'
down_revision = '0014'
branch_labels = None
depends_on = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _discord_spaces(key: tuple[str, ...]) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('guild_id', _text(32), nullable=False),
        sa.Column('channel_id', _text(32), nullable=True),
        sa.Column('message_id', _text(32), nullable=True),
        sa.Column('event_id', _text(32), nullable=True),
        sa.Column('role_id', _text(32), nullable=True),
        sa.Column('stage_channel_id', _text(32), nullable=True),
        sa.Column('role_alert', _text(32), nullable=True),
        sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id']),
        sa.PrimaryKeyConstraint(*key),
    ]


def _discord_role_tasks(key: tuple[str, ...], guild: bool) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column('space_id', sa.Integer(), nullable=False),
        *([sa.Column('guild_id', _text(32), nullable=False)] if guild else []),
        sa.Column('user_id', _text(32), nullable=False),
        sa.Column('action', _text(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', _text(300), nullable=False),
        sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id']),
        sa.PrimaryKeyConstraint(*key),
    ]


def _slack_announcements(key: tuple[str, ...]) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('team_id', _text(32), nullable=False),
        sa.Column('channel_id', _text(32), nullable=False),
        sa.Column('ts', _text(32), nullable=False),
        sa.Column('posted_at', bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id']),
        sa.PrimaryKeyConstraint(*key),
    ]


def _matrix_announcements(key: tuple[str, ...]) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('room_id', _text(255), nullable=False),
        sa.Column('event_id', _text(255), nullable=False),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id']),
        sa.PrimaryKeyConstraint(*key),
    ]


def _rebuild(
    name: str, items: list[sa.schema.SchemaItem], copy: str, index: tuple[str, str] | None = None
) -> None:
    """A new primary key, the same way on SQLite and PostgreSQL: a new table, the rows
    copied (`copy`: the SELECT that reads the old one), the old one dropped, the new one
    renamed (nothing references these tables)."""
    new = f'{name}_rekeyed'
    op.create_table(new, *items)
    columns = ', '.join(c.name for c in items if isinstance(c, sa.Column))
    op.execute(f'INSERT INTO {new} ({columns}) {copy}')
    if index is not None:
        op.drop_index(index[0], table_name=name)
    op.drop_table(name)
    op.rename_table(new, name)
    if op.get_bind().dialect.name == 'postgresql':  # the key's index keeps its first name
        op.execute(f'ALTER INDEX {new}_pkey RENAME TO {name}_pkey')
    if index is not None:
        op.create_index(index[0], name, [index[1]], unique=False)


_DISCORD_COLUMNS = (
    'space_id, guild_id, channel_id, message_id, event_id, role_id, stage_channel_id, '
    'role_alert, updated_at'
)
_TASK_COLUMNS = 'user_id, action, attempts, last_error, created_at, updated_at'


def upgrade() -> None:
    _rebuild(
        'discord_spaces',
        _discord_spaces(('space_id', 'guild_id')),
        f'SELECT {_DISCORD_COLUMNS} FROM discord_spaces',
        ('ix_discord_spaces_guild_id', 'guild_id'),
    )
    # a task belongs to the server of the Space's row (one row each before this)
    _rebuild(
        'discord_role_tasks',
        _discord_role_tasks(('space_id', 'guild_id', 'user_id'), guild=True),
        f'SELECT t.space_id, s.guild_id, {", ".join("t." + c for c in _TASK_COLUMNS.split(", "))} '
        'FROM discord_role_tasks t JOIN discord_spaces s ON s.space_id = t.space_id',
    )
    _rebuild(
        'slack_announcements',
        _slack_announcements(('space_id', 'team_id')),
        'SELECT space_id, team_id, channel_id, ts, posted_at, updated_at FROM slack_announcements',
        ('ix_slack_announcements_team_id', 'team_id'),
    )
    _rebuild(
        'matrix_announcements',
        _matrix_announcements(('space_id', 'room_id')),
        'SELECT space_id, room_id, event_id FROM matrix_announcements',
    )


def downgrade() -> None:
    # one row per Space again: the one of the lowest community id is kept
    def first(table: str, community: str) -> str:
        return (
            f'FROM {table} a WHERE a.{community} = (SELECT MIN(b.{community}) FROM {table} b '
            'WHERE b.space_id = a.space_id)'
        )

    _rebuild(
        'matrix_announcements',
        _matrix_announcements(('space_id',)),
        'SELECT space_id, room_id, event_id ' + first('matrix_announcements', 'room_id'),
    )
    _rebuild(
        'slack_announcements',
        _slack_announcements(('space_id',)),
        'SELECT space_id, team_id, channel_id, ts, posted_at, updated_at '
        + first('slack_announcements', 'team_id'),
        ('ix_slack_announcements_team_id', 'team_id'),
    )
    _rebuild(
        'discord_role_tasks',
        _discord_role_tasks(('space_id', 'user_id'), guild=False),
        f'SELECT space_id, {_TASK_COLUMNS} ' + first('discord_role_tasks', 'guild_id'),
    )
    _rebuild(
        'discord_spaces',
        _discord_spaces(('space_id',)),
        f'SELECT {_DISCORD_COLUMNS} ' + first('discord_spaces', 'guild_id'),
        ('ix_discord_spaces_guild_id', 'guild_id'),
    )
