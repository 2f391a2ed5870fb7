"""A local fake Discord (REST + gateway) that the unmodified discord.py client talks to."""

from .interactions import FakeInteraction
from .rest import Call
from .server import FakeDiscord
from .state import DM, STAGE, TEXT, Channel, Guild, Member, Message, Role, User

__all__ = [
    "DM",
    "STAGE",
    "TEXT",
    "Call",
    "Channel",
    "FakeDiscord",
    "FakeInteraction",
    "Guild",
    "Member",
    "Message",
    "Role",
    "User",
]
