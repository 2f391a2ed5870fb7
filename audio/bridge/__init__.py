"""The Discord voice bridge: a Discord Stage or voice channel as one voice of a room.

rtp.py         RTP headers and RFC 8285 extensions
transport.py   Discord's ``*_rtpsize`` AEAD transport encryption
speakers.py    SSRC → user from SPEAKING / CLIENT_DISCONNECT
receive.py     datagram → user packet; per-user jitter buffer and decoder → one voice
source.py      the room's mix minus Discord as a discord.py ``AudioSource`` (Opus)
bridge.py      VoiceBridge: discord.py's voice client hooked both ways
bridges.py     DiscordBridges: this process's running bridges, one per bridged Space
"""

from audio.bridge.bridge import VOICE_KEY, BridgeVoiceClient, VoiceBridge, on_stage
from audio.bridge.bridges import DiscordBridges
from audio.bridge.receive import DiscordVoices, Receiver
from audio.bridge.source import OPUS_SILENCE, DiscordOutbound, RoomSource
from audio.bridge.speakers import SsrcMap
from audio.bridge.transport import TransportCipher

__all__ = [
    "OPUS_SILENCE",
    "VOICE_KEY",
    "BridgeVoiceClient",
    "DiscordBridges",
    "DiscordOutbound",
    "DiscordVoices",
    "Receiver",
    "RoomSource",
    "SsrcMap",
    "TransportCipher",
    "VoiceBridge",
    "on_stage",
]
