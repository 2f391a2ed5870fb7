"""Checks on a participant's SDP offer, made before any RTCPeerConnection exists.

The room answers exactly one thing: one audio section with Opus, over ICE + DTLS with
rtcp-mux. Refusing anything else up front means a malformed or hostile offer costs a parse,
not a peer connection with its certificate, ICE gatherer and threads. Whatever aiortc would
trip over later (a BUNDLE group naming a section that does not exist, a candidate that is
not an address, a fingerprint of an unknown hash) is refused here with a message that says
what is wrong; `Room.join` still turns any failure of negotiation into `BadOffer`.

`check_offer` returns the offer the room should answer: the same text, less the ICE
candidates in private ranges when ``deny_private_ice`` asks (a server in a data centre should
not be made to send connectivity checks into its own network).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from aiortc import sdp

from audio.errors import BadOffer

MAX_SDP_CHARS: Final = 32_000
"""A browser's audio-only offer is 2-5 kB; anything near this bound is not one."""
MAX_LINES: Final = 400
MAX_LINE_CHARS: Final = 1_024
MAX_CODECS: Final = 64
MAX_CANDIDATES: Final = 64
MAX_EXTENSIONS: Final = 32

_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly"})
_PROFILES: Final = frozenset({"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP"})
_FINGERPRINTS: Final = {"sha-256": 32, "sha-384": 48, "sha-512": 64}
"""The hashes aiortc's DTLS checks, with their digest sizes in bytes."""
_CANDIDATE_TYPES: Final = frozenset({"host", "srflx", "prflx", "relay"})
_TOKEN: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`{|}~]{1,32}$")
"""An SDP token (RFC 8866), as a mid; 32 characters is plenty (browsers send "0")."""
_ICE_CHARS: Final = re.compile(r"^[A-Za-z0-9+/]+$")
_MDNS: Final = re.compile(r"^[A-Za-z0-9-]{1,63}\.local$")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_offer(offer_sdp: str, offer_type: str, *, deny_private_ice: bool = False) -> str:
    """The offer to answer; raises `BadOffer` unless it is an audio-only Opus offer the room
    can answer. With ``deny_private_ice`` its candidates in private, loopback, link-local
    and mDNS (``.local``) addresses are left out."""
    if offer_type != "offer":
        raise BadOffer("Expected an SDP offer.")
    if not offer_sdp or len(offer_sdp) > MAX_SDP_CHARS:
        raise BadOffer("The SDP offer is empty or too large.")
    lines = offer_sdp.splitlines()
    if len(lines) > MAX_LINES or any(len(line) > MAX_LINE_CHARS for line in lines):
        raise BadOffer("The SDP offer has too many lines or a line too long.")
    if _CONTROL.search(offer_sdp):
        raise BadOffer("The SDP offer contains control characters.")
    try:
        description = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises ValueError, AssertionError, IndexError...
        raise BadOffer("The SDP offer could not be parsed.") from exc
    media = description.media
    if len(media) != 1 or media[0].kind != "audio":
        raise BadOffer("The offer must have exactly one audio section and nothing else.")
    audio = media[0]
    _check_section(audio)
    _check_groups(description, audio)
    _check_codecs(audio)
    _check_transport(audio)
    if not deny_private_ice:
        return offer_sdp
    return _without_private_candidates(offer_sdp, lines)


def _check_section(audio: sdp.MediaDescription) -> None:
    if audio.port == 0:
        raise BadOffer("The audio section is turned off (port 0).")
    if audio.profile not in _PROFILES:
        raise BadOffer("The audio section must use UDP/TLS/RTP/SAVPF.")
    if audio.direction not in _DIRECTIONS:
        raise BadOffer("The audio section must send, receive, or both.")
    mid = audio.rtp.muxId
    if not mid or not _TOKEN.match(mid):
        raise BadOffer("The audio section needs a short a=mid.")


def _check_groups(description: sdp.SessionDescription, audio: sdp.MediaDescription) -> None:
    bundles = 0
    for group in description.group:
        bundles += group.semantic == "BUNDLE"
        items = [str(item) for item in group.items]
        line = "The a=group:BUNDLE line" if group.semantic == "BUNDLE" else "An a=group line"
        if not items or any(item != audio.rtp.muxId for item in items):
            raise BadOffer(f"{line} names a media section the offer does not have.")
        if len(set(items)) != len(items):
            raise BadOffer(f"{line} names a section twice.")
    if bundles > 1:
        raise BadOffer("The offer has more than one BUNDLE group.")


def _check_codecs(audio: sdp.MediaDescription) -> None:
    codecs = audio.rtp.codecs
    if len(codecs) > MAX_CODECS:
        raise BadOffer("The offer lists too many codecs.")
    payload_types = [codec.payloadType for codec in codecs]
    if len(set(payload_types)) != len(payload_types):
        raise BadOffer("The offer maps one payload type to two codecs.")
    if any(pt not in audio.fmt for pt in payload_types):
        raise BadOffer("The offer maps a payload type its m=audio line does not list.")
    if not any(
        codec.mimeType.lower() == "audio/opus" and codec.clockRate == 48_000 and codec.channels == 2
        for codec in codecs
    ):
        raise BadOffer("The offer must include the Opus codec (opus/48000/2).")
    extensions = audio.rtp.headerExtensions
    ids = [extension.id for extension in extensions]
    if len(ids) > MAX_EXTENSIONS or len(set(ids)) != len(ids) or any(not 0 < i < 256 for i in ids):
        raise BadOffer("The offer's RTP header extensions (a=extmap) are not valid.")


def _check_transport(audio: sdp.MediaDescription) -> None:
    ice = audio.ice
    if ice is None or not ice.usernameFragment or not ice.password:
        raise BadOffer("The offer has no ICE credentials.")
    if not (
        4 <= len(ice.usernameFragment) <= 256
        and 22 <= len(ice.password) <= 256
        and _ICE_CHARS.match(ice.usernameFragment)
        and _ICE_CHARS.match(ice.password)
    ):
        raise BadOffer("The offer's ICE credentials are not valid (RFC 8839).")
    if audio.dtls is None or not audio.dtls.fingerprints:
        raise BadOffer("The offer has no DTLS fingerprint.")
    for fingerprint in audio.dtls.fingerprints:
        size = _FINGERPRINTS.get(fingerprint.algorithm.lower())
        if (
            size is None
            or not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*", fingerprint.value)
            or len(fingerprint.value) != size * 3 - 1
        ):
            raise BadOffer("The offer's DTLS fingerprint must be a SHA-256/384/512 digest.")
    if not audio.rtcp_mux:
        raise BadOffer("The offer must use rtcp-mux.")
    candidates = audio.ice_candidates
    if len(candidates) > MAX_CANDIDATES:
        raise BadOffer("The offer has too many ICE candidates.")
    for candidate in candidates:
        if not (_unicast(candidate.ip) or _MDNS.match(candidate.ip)) or not (
            candidate.component in (1, 2)
            and 0 < candidate.port <= 65_535
            and 0 <= candidate.priority < 2**32
            and candidate.protocol.lower() in ("udp", "tcp")
            and candidate.type in _CANDIDATE_TYPES
        ):
            raise BadOffer("The offer has an ICE candidate that is not valid.")


def _unicast(text: str) -> bool:
    """An IP address a peer can be reached at: not unspecified, multicast, broadcast or
    reserved (the room must never send connectivity checks to a whole network)."""
    address = _address(text)
    if address is None or address.is_unspecified or address.is_multicast:
        return False
    return address.is_loopback or not address.is_reserved  # ::1 lies in IPv6's reserved ::/8


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def private_address(host: str) -> bool:
    """True for a candidate address a public server should not send to: private, loopback,
    link-local, unspecified, multicast or reserved IPs, and mDNS names (which resolve on the
    server's own network)."""
    address = _address(host)
    if address is None:
        return True  # an mDNS name; `check_offer` admits no other names
    return not address.is_global or address.is_multicast


def _without_private_candidates(offer_sdp: str, lines: list[str]) -> str:
    newline = "\r\n" if "\r\n" in offer_sdp else "\n"
    kept = [
        line
        for line in lines
        if not (
            line.startswith("a=candidate:")
            and private_address(sdp.candidate_from_sdp(line[len("a=candidate:") :]).ip)
        )
    ]
    return newline.join(kept) + newline
