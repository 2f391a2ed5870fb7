from __future__ import annotations

import struct

import pytest

from audio.bridge import rtp


def test_round_trip_plain() -> None:
    packet = rtp.RtpPacket(sequence=65535, timestamp=2**32 - 1, ssrc=42, payload=b"opus")
    data = rtp.build(packet)
    assert data[:2] == b"\x80\x78"
    assert rtp.parse(data) == packet
    assert rtp.unencrypted_size(data) == 12


def test_round_trip_with_extension_and_csrcs() -> None:
    packet = rtp.RtpPacket(
        sequence=7,
        timestamp=960,
        ssrc=0xDEADBEEF,
        payload=b"\xfc\x01\x02",
        marker=True,
        csrcs=(1, 2),
        extension_profile=rtp.EXTENSION_ONE_BYTE,
        extension=b"\x10\xff\x00\x00" * 2,
    )
    data = rtp.build(packet)
    assert rtp.unencrypted_size(data) == 12 + 8 + 4
    assert rtp.extension_length(data) == 8
    assert rtp.parse(data) == packet


def test_padding_is_removed() -> None:
    data = bytearray(rtp.build(rtp.RtpPacket(sequence=1, timestamp=2, ssrc=3, payload=b"ab")))
    data[0] |= 0x20
    data += b"\0\0\3"
    assert rtp.parse(bytes(data)).payload == b"ab"


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x78",  # too short
        b"\x00" * 20,  # version 0 (an IP discovery reply looks like this)
        b"\x90\x78" + b"\0" * 10,  # X bit, header cut short
        b"\x90\x78" + b"\0" * 10 + struct.pack(">HH", 0xBEDE, 5),  # extension past the end
    ],
)
def test_bad_packets(data: bytes) -> None:
    with pytest.raises(rtp.BadPacket):
        rtp.parse(data)


def test_rtcp_is_recognised() -> None:
    assert rtp.is_rtcp(b"\x81\xc9\x00\x07")
    assert not rtp.is_rtcp(rtp.build(rtp.RtpPacket(sequence=1, timestamp=1, ssrc=1, payload=b"")))
