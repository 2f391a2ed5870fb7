"""Checks on a participant's SDP offer, made before any RTCPeerConnection exists.

The room answers exactly one thing: one audio section with Opus, over ICE + DTLS with
rtcp-mux. Refusing anything else up front means a malformed or hostile offer costs a parse,
not a peer connection with its certificate, ICE gatherer and threads.
"""

from __future__ import annotations

from typing import Final

from aiortc import sdp

from audio.errors import BadOffer

MAX_SDP_CHARS: Final = 32_000
"""A browser's audio-only offer is 2-5 kB; anything near this bound is not one."""

_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly"})


def check_offer(offer_sdp: str, offer_type: str) -> None:
    """Raise `BadOffer` unless this is an audio-only Opus offer the room can answer."""
    if offer_type != "offer":
        raise BadOffer("Expected an SDP offer.")
    if not offer_sdp or len(offer_sdp) > MAX_SDP_CHARS:
        raise BadOffer("The SDP offer is empty or too large.")
    try:
        description = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises ValueError, AssertionError, IndexError...
        raise BadOffer("The SDP offer could not be parsed.") from exc
    media = description.media
    if len(media) != 1 or media[0].kind != "audio":
        raise BadOffer("The offer must have exactly one audio section and nothing else.")
    audio = media[0]
    if audio.direction not in _DIRECTIONS:
        raise BadOffer("The audio section must send, receive, or both.")
    if not any(codec.mimeType.lower() == "audio/opus" for codec in audio.rtp.codecs):
        raise BadOffer("The offer must include the Opus codec.")
    if audio.ice is None or not audio.ice.usernameFragment or not audio.ice.password:
        raise BadOffer("The offer has no ICE credentials.")
    if audio.dtls is None or not audio.dtls.fingerprints:
        raise BadOffer("The offer has no DTLS fingerprint.")
    if not audio.rtcp_mux:
        raise BadOffer("The offer must use rtcp-mux.")
