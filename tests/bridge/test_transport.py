"""Decrypting what discord.py itself sends, and what Discord sends (with extensions)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import discord
import pytest

from audio.bridge import rtp
from audio.bridge.transport import (
    AES_GCM,
    XCHACHA,
    DecryptError,
    TransportCipher,
    UnsupportedMode,
)


def discordpy_packets(key: bytes, payloads: list[bytes]) -> list[bytes]:
    """Packets built by discord.py's own VoiceClient send path (header + encryption)."""
    client = discord.VoiceClient.__new__(discord.VoiceClient)
    client._connection = SimpleNamespace(  # type: ignore[assignment]  # only what the send path reads
        secret_key=list(key), mode=XCHACHA, ssrc=1234, dave_session=None, can_encrypt=False
    )
    client._incr_nonce = 0
    client.sequence = 100
    client.timestamp = 48_000
    out = []
    for payload in payloads:
        out.append(client._get_voice_packet(payload))
        client.sequence += 1
        client.timestamp += 960
    return out


def test_opens_discordpy_xchacha_packets() -> None:
    key = os.urandom(32)
    payloads = [b"\xf8\xff\xfe", b"\xfc" + os.urandom(60)]
    cipher = TransportCipher(XCHACHA, list(key))
    opened = [cipher.open(d) for d in discordpy_packets(key, payloads)]
    assert [p.payload for p in opened] == payloads
    assert [p.sequence for p in opened] == [100, 101]
    assert opened[1].timestamp == 48_960
    assert {p.ssrc for p in opened} == {1234}


def test_discordpy_negotiates_a_mode_we_open() -> None:
    assert XCHACHA in discord.VoiceClient.supported_modes


@pytest.mark.parametrize("mode", [XCHACHA, AES_GCM])
def test_extension_body_is_encrypted_and_stripped(mode: str) -> None:
    key = os.urandom(32)
    packet = rtp.RtpPacket(
        sequence=9,
        timestamp=1,
        ssrc=77,
        payload=b"\xfc" + os.urandom(40),
        extension_profile=rtp.EXTENSION_ONE_BYTE,
        extension=b"\x10\x7f\x00\x00",
    )
    sealed = TransportCipher(mode, key).seal(packet)
    assert sealed[:16] == rtp.build(packet)[:16]  # header and extension header in clear
    assert b"\x10\x7f\x00\x00" not in sealed[16:]
    assert TransportCipher(mode, key).open(sealed) == packet


@pytest.mark.parametrize("mode", [XCHACHA, AES_GCM])
def test_tampering_and_wrong_key_are_refused(mode: str) -> None:
    key = os.urandom(32)
    sealed = bytearray(
        TransportCipher(mode, key).seal(
            rtp.RtpPacket(sequence=1, timestamp=1, ssrc=1, payload=b"x")
        )
    )
    with pytest.raises(DecryptError):
        TransportCipher(mode, os.urandom(32)).open(bytes(sealed))
    sealed[3] ^= 1  # the sequence number is authenticated
    with pytest.raises(DecryptError):
        TransportCipher(mode, key).open(bytes(sealed))


def test_unknown_mode() -> None:
    with pytest.raises(UnsupportedMode):
        TransportCipher("xsalsa20_poly1305", bytes(32))
