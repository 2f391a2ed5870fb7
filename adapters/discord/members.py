"""Discord members as the core sees them: `Actor`s, moderators, identity keys."""

from __future__ import annotations

import discord

from bot.actors import Actor, UserRef
from bot.models import Platform

#: Discord's own stage moderators: what it takes to run a Stage channel.
STAGE_MODERATOR = discord.Permissions(manage_channels=True, mute_members=True, move_members=True)


def is_moderator(
    member: discord.Member, permissions: discord.Permissions, moderator_roles: frozenset[str]
) -> bool:
    """Manage Channels + Mute Members + Move Members (administrators have them all), or a
    role named in DISCORD_MODERATOR_ROLE."""
    if permissions >= STAGE_MODERATOR:
        return True
    return any(str(r.id) in moderator_roles or r.name in moderator_roles for r in member.roles)


def actor_for(
    member: discord.Member,
    moderator_roles: frozenset[str],
    permissions: discord.Permissions | None = None,
) -> Actor:
    """The core's view of a member. `permissions` are the ones Discord resolved for the
    interaction (channel overwrites included); the member's server-wide ones otherwise."""
    perms = permissions if permissions is not None else member.guild_permissions
    roles = frozenset(
        name for r in member.roles if not r.is_default() for name in (str(r.id), r.name)
    )
    return Actor(
        Platform.DISCORD,
        str(member.guild.id),
        str(member.id),
        member.display_name,
        is_moderator=is_moderator(member, perms, moderator_roles),
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
