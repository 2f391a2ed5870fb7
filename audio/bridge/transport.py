"""Discord's voice transport encryption, the ``*_rtpsize`` AEAD modes.

A datagram is ``header || ciphertext+tag || nonce32``: the clear header (`rtp.unencrypted_size`)
is the associated data, the ciphertext covers the extension body and the Opus payload, and
the last 4 bytes are a big-endian counter that the sender increments; zero-padded it is the
nonce (24 bytes for XChaCha20-Poly1305, 12 for AES-256-GCM). This matches what discord.py's
``VoiceClient._encrypt_aead_xchacha20_poly1305_rtpsize`` sends, and what Discord sends us.
"""

from __future__ import annotations

import struct
from typing import Final, Protocol

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audio.bridge import rtp
from audio.errors import AudioError

XCHACHA: Final = "aead_xchacha20_poly1305_rtpsize"
AES_GCM: Final = "aead_aes256_gcm_rtpsize"
MODES: Final = (AES_GCM, XCHACHA)
"""The modes we can decrypt, in Discord's order of preference."""

_SUFFIX: Final = 4
_TAG: Final = 16


class DecryptError(AudioError):
    """A datagram that failed authentication (wrong key, wrong mode, or tampered)."""


class UnsupportedMode(AudioError):
    """Discord picked a transport mode we cannot decrypt."""


class _Aead(Protocol):
    nonce_size: int

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes: ...


class _XChaCha:
    nonce_size = 24

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, aad, nonce, self._key
        )

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, aad, nonce, self._key
            )
        except nacl.exceptions.CryptoError as exc:
            raise DecryptError("voice packet failed authentication") from exc


class _AesGcm:
    nonce_size = 12

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise DecryptError("voice packet failed authentication") from exc


class TransportCipher:
    """Seal and open voice datagrams for one session key and mode (thread-safe to read)."""

    def __init__(self, mode: str, secret_key: bytes | list[int]) -> None:
        key = bytes(secret_key)
        if len(key) != 32:
            raise ValueError("the voice secret key is 32 bytes")
        if mode == XCHACHA:
            self._aead: _Aead = _XChaCha(key)
        elif mode == AES_GCM:
            self._aead = _AesGcm(key)
        else:
            raise UnsupportedMode(f"voice transport mode {mode!r} is not supported")
        self.mode = mode
        self._counter = 0

    def _nonce(self, suffix: bytes) -> bytes:
        return suffix + bytes(self._aead.nonce_size - _SUFFIX)

    def seal(self, packet: rtp.RtpPacket) -> bytes:
        """Encrypt one packet as a sender would (the fake Discord and the tests use this)."""
        plain = rtp.build(packet)
        clear = rtp.unencrypted_size(plain)
        suffix = struct.pack(">I", self._counter)
        self._counter = (self._counter + 1) & 0xFFFFFFFF
        sealed = self._aead.seal(self._nonce(suffix), plain[clear:], plain[:clear])
        return plain[:clear] + sealed + suffix

    def open(self, datagram: bytes) -> rtp.RtpPacket:
        """Authenticate and decrypt one datagram into a plaintext packet.

        Raises `rtp.BadPacket` for a malformed datagram and `DecryptError` when it fails
        authentication.
        """
        datagram = bytes(datagram)
        clear = rtp.unencrypted_size(datagram)
        if len(datagram) < clear + _TAG + _SUFFIX:
            raise rtp.BadPacket("voice datagram too short")
        aad = datagram[:clear]
        suffix = datagram[-_SUFFIX:]
        plain = self._aead.open(self._nonce(suffix), datagram[clear:-_SUFFIX], aad)
        return rtp.parse(aad + plain)
