"""RTP (RFC 3550) headers as Discord's voice servers send them, with RFC 8285 extensions.

Discord's ``*_rtpsize`` transport modes authenticate, but do not encrypt, the fixed header,
the CSRC list and the 4-byte extension header (profile and length); the extension *body*
is encrypted together with the payload. `unencrypted_size` gives that boundary.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from audio.errors import AudioError

VERSION: Final = 2
FIXED_HEADER: Final = 12
EXTENSION_ONE_BYTE: Final = 0xBEDE
"""RFC 8285 one-byte-header extension profile; what Discord clients send."""

_RTCP_TYPES: Final = range(200, 205)


class BadPacket(AudioError):
    """A datagram that is not a usable RTP packet (too short, wrong version, bad lengths)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; ``extension`` is the raw extension body (without its 4-byte header)."""

    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    payload_type: int = 0x78
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""


def is_rtcp(datagram: bytes) -> bool:
    """RTCP shares the socket (rtcp-mux); its second byte is a packet type 200-204."""
    return len(datagram) >= 2 and datagram[1] in _RTCP_TYPES


def unencrypted_size(datagram: bytes) -> int:
    """Bytes at the start of ``datagram`` that ``*_rtpsize`` modes leave in clear (the AAD)."""
    if len(datagram) < FIXED_HEADER or datagram[0] >> 6 != VERSION:
        raise BadPacket("not an RTP version 2 packet")
    size = FIXED_HEADER + 4 * (datagram[0] & 0x0F)
    if datagram[0] & 0x10:
        size += 4
    if len(datagram) < size:
        raise BadPacket("RTP header longer than the datagram")
    return size


def extension_length(header: bytes) -> int:
    """Bytes of extension body announced by a header (0 without the X bit)."""
    if not header[0] & 0x10:
        return 0
    (words,) = struct.unpack_from(">H", header, unencrypted_size(header) - 2)
    return 4 * int(words)


def parse(data: bytes) -> RtpPacket:
    """Parse a plaintext RTP packet, extension body included; padding is removed."""
    start = unencrypted_size(data)
    first, second, sequence, timestamp, ssrc = struct.unpack_from(">BBHII", data)
    count = first & 0x0F
    csrcs = struct.unpack_from(f">{count}I", data, FIXED_HEADER)
    profile: int | None = None
    extension = b""
    if first & 0x10:
        profile, words = struct.unpack_from(">HH", data, start - 4)
        extension = data[start : start + 4 * words]
        if len(extension) != 4 * words:
            raise BadPacket("RTP extension longer than the packet")
        start += 4 * words
    end = len(data)
    if first & 0x20:
        pad = data[-1]
        if pad == 0 or pad > end - start:
            raise BadPacket("bad RTP padding")
        end -= pad
    return RtpPacket(
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=data[start:end],
        payload_type=second & 0x7F,
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
        extension_profile=profile,
        extension=extension,
    )


def build(packet: RtpPacket) -> bytes:
    """Serialize ``packet`` (the extension body must be a whole number of 32-bit words)."""
    if len(packet.csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    if len(packet.extension) % 4:
        raise ValueError("extension body must be padded to 32-bit words")
    has_ext = packet.extension_profile is not None
    first = (VERSION << 6) | (0x10 if has_ext else 0) | len(packet.csrcs)
    second = (0x80 if packet.marker else 0) | (packet.payload_type & 0x7F)
    out = bytearray(
        struct.pack(
            ">BBHII",
            first,
            second,
            packet.sequence & 0xFFFF,
            packet.timestamp & 0xFFFFFFFF,
            packet.ssrc & 0xFFFFFFFF,
        )
    )
    out += struct.pack(f">{len(packet.csrcs)}I", *packet.csrcs)
    if packet.extension_profile is not None:
        out += struct.pack(">HH", packet.extension_profile, len(packet.extension) // 4)
        out += packet.extension
    out += packet.payload
    return bytes(out)
