"""Discord members as the core sees them: `Actor`s, moderators, identity keys."""

from __future__ import annotations

import discord

from bot.actors import Actor, UserRef
from bot.models import Platform

#: Discord's own stage moderators: what it takes to run a Stage channel.
STAGE_MODERATOR = discord.Permissions(manage_channels=True, mute_members=True, move_members=True)


def grants_moderator(permissions: discord.Permissions) -> bool:
    """Manage Channels + Mute Members + Move Members, or administrator (which has them all)."""
    return permissions.administrator or permissions >= STAGE_MODERATOR


def is_named(role: discord.Role, named: frozenset[str]) -> bool:
    """Whether DISCORD_MODERATOR_ROLE (`named`: role ids and names) names this role."""
    return str(role.id) in named or role.name in named


def is_moderator(
    member: discord.Member, permissions: discord.Permissions, named: frozenset[str]
) -> bool:
    """The moderator rule: `permissions` (as Discord resolved them) that `grants_moderator`,
    or a role `named` in DISCORD_MODERATOR_ROLE."""
    return grants_moderator(permissions) or any(is_named(r, named) for r in member.roles)


def moderator_roles(guild: discord.Guild, named: frozenset[str]) -> list[discord.Role]:
    """The roles that make their members moderators by the same rule, highest first: the
    alert channel mentions them. Bot and integration roles are not people's roles, and
    @everyone is never pinged. (A member with the three permissions only from several
    roles together is a moderator whom no role here names.)"""
    return [
        role
        for role in sorted(guild.roles, key=lambda r: r.position, reverse=True)
        if not role.is_default()
        and not role.managed
        and (is_named(role, named) or grants_moderator(role.permissions))
    ]


def actor_for(
    member: discord.Member,
    named: frozenset[str],
    permissions: discord.Permissions | None = None,
) -> Actor:
    """The core's view of a member; `named` are the DISCORD_MODERATOR_ROLE roles.
    `permissions` are the ones Discord resolved for the interaction (channel overwrites
    included); the member's server-wide ones otherwise."""
    perms = permissions if permissions is not None else member.guild_permissions
    roles = frozenset(
        name for r in member.roles if not r.is_default() for name in (str(r.id), r.name)
    )
    return Actor(
        Platform.DISCORD,
        str(member.guild.id),
        str(member.id),
        member.display_name,
        is_moderator=is_moderator(member, perms, named),
        roles=roles,
        member_since=member.joined_at,
        community_name=member.guild.name,
    )


def bot_actor(guild: discord.Guild, me: discord.abc.User) -> Actor:
    """The bot itself, acting for Discord's own UI (a moderator promoting someone on the
    Stage): Discord already checked that moderator's rights."""
    return Actor(
        Platform.DISCORD,
        str(guild.id),
        str(me.id),
        "Discord Stage",
        is_moderator=True,
        community_name=guild.name,
    )


def user_ref(member: discord.Member | discord.User) -> UserRef:
    return UserRef(str(member.id), member.display_name)


def guild_of(community_id: str) -> int | None:
    """`discord:1234` -> 1234; None for other platforms."""
    platform, _, external = community_id.partition(":")
    if platform != Platform.DISCORD.value or not external.isdigit():
        return None
    return int(external)


def split_key(identity_key: str) -> tuple[int, int] | None:
    """`discord:GUILD:USER` -> (guild id, user id); None for other platforms."""
    community, _, user = identity_key.rpartition(":")
    guild_id = guild_of(community)
    if guild_id is None or not user.isdigit():
        return None
    return guild_id, int(user)
