"""The DAVE (end-to-end) layer of the receive path, with real davey sessions in a real MLS group.

`DaveGateway` plays Discord's voice gateway (the group's external sender and delivery
service); fake users and the bot are davey sessions that join the group through it the way
discord.py does. A fake user's Opus frames, DAVE-encrypted by their own session and then
transport-sealed, come out of the bridge's own receive path (`VoiceBridge.receiver`, which
decrypts with the bot's session) as the very frames that went in, and keep doing so when
the epoch changes (someone joins, someone leaves, the group is re-created).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from audio.bridge import VoiceBridge, rtp
from audio.bridge.source import OPUS_SILENCE
from audio.bridge.transport import XCHACHA, TransportCipher
from tests.bridge.tones import opus_tone
from tests.discord.fake_discord.dave import (
    DaveGateway,
    DaveMember,
    ExternalSender,
    Reader,
    sign_content,
)

CHANNEL = 927310423890473011
ALICE, BOB, CAROL, BOT = 101, 202, 303, 999
SSRC = {ALICE: 1111, BOB: 2222, CAROL: 3333}
DAVE_MAGIC = b"\xfa\xfa"

# An add proposal and the external sender that signed it, as a real Discord voice server
# sent them (channel 927310423890473011, adding user 158533742254751744): davey's test data.
DISCORD_EXTERNAL_SENDER = bytes.fromhex(
    "404104ca1a2b102501d0672bd45ed74ffb83e078b2ba5b12c3f69fad56f083b6a35fc989c6736b5852b5aecd"
    "fcdf206e156d3d1dba8e3e5b2f89fc0c16f11614e84e4a00010100"
)
DISCORD_PROPOSALS = bytes.fromhex(
    "41f000010001080cde77eadc823033000000000000000002000000000002000100010002404104a61acd34ff"
    "0548e6f767cc4df9619b51ba5814d52ee558284fc554405768e9e741ba32276414941b7c0190dcb5dfc3349a"
    "168f1247ecbdf6fc69f3eecab3765d404104f44da24e5aa9f73796fa38be115556e6b7d4f6ba55d2ecc3f1b9"
    "d198af6237e3fc8fc635996b6c76e77b4acace33f5cfd745ad0d540dd6f03f0da85c82e14714404104e77939"
    "85ed074af49568b53cf2e3974688279f02ee8d7c7df099ce3c7a1a28e747f59a7c7c23e9ef4f7815fb3469f3"
    "9ea124f8b76712c41b763a55b867e6b48b000108023339994002000002000102000200000200010100000000"
    "00000000ffffffffffffffff0040483046022100d874dc777d4ede7e6d3374f737bc1394ac0ffd0635abdc9d"
    "02b3e359e059466a022100e62e97aefd5c6b32ff0ac5c5159dbe94f6f5a01bd0dd14a9dcc4d1e6248972ac00"
    "4047304502205168abdf8d83a48daf8d5960afb305022de707c7496087feb43004c9fd2be5e80221008312a6"
    "f6df1ff593671a39f9966f6d1caef43e0c6d53c74300ba089ceeecfbf440473045022100cdbe804ba06a9be1"
    "7615fe3c7f9055f31a6d0ea9402dd9fda6d109e9a3cb632b022067409e59f6b7f0a3eddd330a092a6c13d99d"
    "12abaebe0d6d40a0dae435c2a7a2"
)


def test_proposal_encoding_is_what_discord_sends() -> None:
    outer = Reader(DISCORD_PROPOSALS)
    message = Reader(outer.opaque())
    assert not outer.rest
    header = message.take(4)
    start = message.pos
    group_id, epoch = message.opaque(), message.uint(8)
    assert (int.from_bytes(group_id, "big"), epoch) == (CHANNEL, 0)
    message.take(5 + 1 + 1 + 2)  # sender, authenticated data, content type, proposal type
    package_start = message.pos
    assert message.key_package() == 158533742254751744
    package = message.data[package_start : message.pos]
    content = message.data[start : message.pos]
    signature = message.opaque()
    assert not message.rest
    # Discord's signature covers exactly the FramedContentTBS we build...
    key = Reader(DISCORD_EXTERNAL_SENDER).opaque()
    discord_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    discord_key.verify(signature, sign_content(header + content), ec.ECDSA(hashes.SHA256()))
    # ...and our proposal of the same key package is Discord's, byte for byte, but the signature.
    ours = ExternalSender().add(group_id, 0, package)
    assert ours[: len(header + content)] == header + content
    assert len(ExternalSender().package) == len(DISCORD_EXTERNAL_SENDER)


class BridgeReceive:
    """The bridge's real receive path (`VoiceBridge.receiver`, `_cipher`, `_dave`) with a
    stand-in for discord.py's voice client that holds the bot's DAVE session."""

    def __init__(self, bot: DaveMember) -> None:
        self.key = os.urandom(32)
        self.bridge = VoiceBridge(SimpleNamespace(), lambda user_id: True)
        voice: Any = SimpleNamespace(
            mode=XCHACHA, secret_key=list(self.key), dave_session=lambda: bot.session
        )
        self.bridge._client = voice
        self._senders: dict[int, TransportCipher] = {}
        self._sequences: dict[int, int] = {}

    def speaking(self, user_id: int) -> None:
        self.bridge.voice_message(
            {"op": 5, "d": {"user_id": str(user_id), "ssrc": SSRC[user_id], "speaking": 1}}
        )

    def datagram(self, user_id: int, payload: bytes) -> bytes:
        """What Discord's media server forwards: ``payload`` in RTP, transport-sealed."""
        sender = self._senders.setdefault(user_id, TransportCipher(XCHACHA, self.key))
        sequence = self._sequences.get(user_id, 0)
        self._sequences[user_id] = sequence + 1
        packet = rtp.RtpPacket(
            sequence=sequence,
            timestamp=sequence * 960,
            ssrc=SSRC[user_id],
            payload=payload,
            extension_profile=rtp.EXTENSION_ONE_BYTE,
            extension=b"\x10\x01\x00\x00",
        )
        return sender.seal(packet)

    def hear(self, user_id: int, payload: bytes) -> bytes | None:
        received = self.bridge.receiver.receive(self.datagram(user_id, payload))
        if received is None:
            return None
        assert received.user_id == user_id
        return received.packet.payload


async def group(*user_ids: int) -> tuple[DaveGateway, dict[int, DaveMember]]:
    gateway = DaveGateway(CHANNEL)
    members = {}
    for user_id in user_ids:
        members[user_id] = DaveMember(gateway, user_id)
        await members[user_id].join()
    return gateway, members


def assert_consistent(gateway: DaveGateway, members: dict[int, DaveMember]) -> None:
    """Every member is in the gateway's epoch, at the leaf the gateway has them at."""
    assert gateway.errors == [] and gateway.invalid == []
    for user_id in gateway.members:
        session = members[user_id].session
        assert session.ready, user_id
        assert session.epoch == gateway.epoch, user_id
        assert session.own_leaf_index == gateway.leaf_of(user_id), user_id
        assert sorted(int(u) for u in session.get_user_ids()) == sorted(gateway.members)


async def test_dave_frames_of_a_discord_user_come_out_of_the_receive_path_as_sent() -> None:
    gateway, members = await group(ALICE, BOB, BOT)
    assert gateway.epoch == 2 and sorted(gateway.members) == [ALICE, BOB, BOT]
    assert_consistent(gateway, members)
    assert gateway.executed and all(m.executed for m in members.values())
    assert gateway.ignored_commits == 2  # two members committed each epoch; the first won
    bridge = BridgeReceive(members[BOT])
    bridge.speaking(ALICE)
    frames = opus_tone(660.0, 25)
    for frame in frames:
        encrypted = members[ALICE].encrypt(frame)
        assert encrypted != frame and encrypted.endswith(DAVE_MAGIC)
        assert bridge.hear(ALICE, encrypted) == frame
    # Discord's synthesized silence passes DAVE untouched, as the protocol allows.
    assert bridge.hear(ALICE, members[ALICE].encrypt(OPUS_SILENCE)) == OPUS_SILENCE
    stats = bridge.bridge.receiver.stats
    assert (stats.packets, stats.dave_failed, stats.undecryptable) == (len(frames) + 1, 0, 0)


async def test_a_frame_is_only_accepted_once_from_the_user_who_encrypted_it() -> None:
    _, members = await group(ALICE, BOB, BOT)
    bridge = BridgeReceive(members[BOT])
    bridge.speaking(BOB)
    (frame,) = opus_tone(660.0, 1)
    assert bridge.hear(BOB, members[ALICE].encrypt(frame)) is None  # alice's key, bob's SSRC
    assert bridge.hear(BOB, frame) is None  # unencrypted media is refused once DAVE is on
    encrypted = members[BOB].encrypt(frame)
    assert bridge.hear(BOB, encrypted) == frame
    assert bridge.hear(BOB, encrypted) is None  # the same frame again (a replay) is refused
    assert bridge.bridge.receiver.stats.dave_failed == 3


async def test_epoch_changes_keep_the_receive_path_decrypting() -> None:
    gateway, members = await group(ALICE, BOB, BOT)
    bridge = BridgeReceive(members[BOT])
    for user_id in (ALICE, BOB, CAROL):
        bridge.speaking(user_id)
    frames = opus_tone(440.0, 12)
    in_flight = members[ALICE].encrypt(frames[0])  # sent just before the commit

    # Carol joins: an Add proposal, one member's commit, a welcome for her.
    carol = members[CAROL] = DaveMember(gateway, CAROL)
    await carol.join()
    assert gateway.epoch == 3 and CAROL in gateway.members
    assert_consistent(gateway, members)
    assert bridge.hear(ALICE, in_flight) == frames[0]  # the last epoch's key is kept a while
    assert bridge.hear(ALICE, members[ALICE].encrypt(frames[1])) == frames[1]
    assert bridge.hear(CAROL, carol.encrypt(frames[2])) == frames[2]

    # Bob leaves: a Remove proposal and a commit; his keys no longer open what is sent now.
    bob = members.pop(BOB)
    await bob.leave()
    assert gateway.epoch == 4 and BOB not in gateway.members
    assert_consistent(gateway, members)
    after = members[ALICE].encrypt(frames[3])
    assert bridge.hear(ALICE, after) == frames[3]
    with pytest.raises(ValueError, match="Failed to decrypt"):
        bob.decrypt(ALICE, after)
    assert bridge.hear(CAROL, carol.encrypt(frames[4])) == frames[4]
    assert bridge.bridge.receiver.stats.dave_failed == 0
    assert len(gateway.commits) == 4  # the group, the bot, carol, bob's removal


async def test_the_group_is_re_created_after_everyone_else_left() -> None:
    gateway, members = await group(ALICE, BOT)
    bridge = BridgeReceive(members[BOT])
    bridge.speaking(CAROL)
    await members.pop(ALICE).leave()
    # Sole member reset: the bot is told to start over with a new key package.
    assert gateway.epoch == 0 and gateway.members == []
    assert not members[BOT].session.ready
    carol = members[CAROL] = DaveMember(gateway, CAROL)
    await carol.join()
    assert gateway.epoch == 1 and sorted(gateway.members) == [CAROL, BOT]
    assert_consistent(gateway, members)
    (frame,) = opus_tone(880.0, 1)
    assert bridge.hear(CAROL, carol.encrypt(frame)) == frame
