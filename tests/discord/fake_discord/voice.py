"""The fake Discord's voice side: a voice gateway websocket (TLS, since discord.py always
dials ``wss://``) and a UDP media endpoint, speaking the protocol discord.py 2.7 speaks.

    voice = FakeVoice(fake)                  # fake: a running FakeDiscord
    async with voice:                        # now the gateway answers op 4 (join voice)
        client = discord.Client(..., connector=voice.connector())   # trusts our cert
        ...
        await voice.speak_as(alice, ssrc=111, payloads=opus_packets)   # SPEAKING + RTP

Voice gateway: HELLO, IDENTIFY → READY (ssrc, ip, port, modes), SELECT_PROTOCOL →
SESSION_DESCRIPTION (a fresh secret key and the mode the client chose), heartbeat ACKs,
RESUME → RESUMED, SPEAKING recorded and pushed. UDP: answers IP discovery, keeps the bot's
datagrams (decrypted with the session key) in `bot_packets`, and sends fake users'
packets sealed with the negotiated mode. The sealing is written here against PyNaCl and
cryptography directly, independent of the code under test.

DAVE (end-to-end encryption) is off unless asked for (``FakeVoice(fake, dave=True)``, as
in a voice channel; Stage channels are exempt): then SESSION_DESCRIPTION carries
``dave_protocol_version`` 1 and the gateway speaks opcodes 21-31 with discord.py as
`tests.discord.fake_discord.dave.DaveGateway`, the group's external sender. Fake users join the
MLS group with `dave_join` (a real davey session each), `speak_as` DAVE-encrypts their
Opus with it, and the bot's packets are DAVE-decrypted with a fake user's session.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import os
import ssl
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import nacl.bindings
from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from tests.discord.fake_discord.dave import DaveGateway, DaveMember

from .gateway import GUILD_VOICE_STATES
from .state import STAGE, Member, VoiceState

XCHACHA = "aead_xchacha20_poly1305_rtpsize"
AES_GCM = "aead_aes256_gcm_rtpsize"
MODES = [AES_GCM, XCHACHA, "xsalsa20_poly1305_lite_rtpsize"]
"""What Discord offers today, in its order; discord.py picks the first it supports."""


def _certificate(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "voice.pem", directory / "voice.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def seal(mode: str, key: bytes, header: bytes, body: bytes, counter: int) -> bytes:
    """``*_rtpsize`` sealing: clear header as AAD, 4-byte counter nonce suffix."""
    suffix = struct.pack(">I", counter)
    if mode == XCHACHA:
        sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            body, header, suffix + bytes(20), key
        )
    else:
        sealed = AESGCM(key).encrypt(suffix + bytes(8), body, header)
    return header + sealed + suffix


def unseal(mode: str, key: bytes, datagram: bytes) -> tuple[bytes, bytes]:
    """``(header, body)`` of a bot datagram (12-byte header: discord.py sends no extension)."""
    header, sealed, suffix = datagram[:12], datagram[12:-4], datagram[-4:]
    if mode == XCHACHA:
        body = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, header, suffix + bytes(20), key
        )
    else:
        body = AESGCM(key).decrypt(suffix + bytes(8), sealed, header)
    return header, body


@dataclass
class _VoiceSession:
    ws: web.WebSocketResponse
    guild_id: int = 0
    user_id: int = 0
    mode: str = ""
    key: bytes = b""
    ssrc: int = 0
    dave: bool = False
    speaking: list[dict[str, Any]] = field(default_factory=list)
    sequence: int = 0


class _DaveConnection:
    """The bot's voice websocket as the DAVE gateway's client: JSON opcodes with ``seq``,
    binary ones as ``uint16 sequence || uint8 opcode || payload``."""

    def __init__(self, session: _VoiceSession) -> None:
        self.session = session

    @property
    def user_id(self) -> int:
        return self.session.user_id

    def _next(self) -> int:
        self.session.sequence = (self.session.sequence + 1) & 0xFFFF
        return self.session.sequence

    async def send_json(self, op: int, data: dict[str, Any]) -> None:
        if not self.session.ws.closed:
            message = {"op": op, "d": data, "seq": self._next()}
            await self.session.ws.send_str(json.dumps(message))

    async def send_binary(self, op: int, payload: bytes) -> None:
        if not self.session.ws.closed:
            await self.session.ws.send_bytes(struct.pack(">HB", self._next(), op) + payload)


class _Media(asyncio.DatagramProtocol):
    def __init__(self, voice: FakeVoice) -> None:
        self.voice = voice
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.voice.bot_address = (addr[0], addr[1])
        if len(data) == 74 and data[:2] == b"\x00\x01":
            ssrc = struct.unpack_from(">I", data, 4)[0]
            reply = struct.pack(">HHI", 2, 70, ssrc) + addr[0].encode().ljust(64, b"\0")
            reply += struct.pack(">H", addr[1])
            assert self.transport is not None
            self.transport.sendto(reply, addr)
            return
        self.voice.received(data)


class FakeVoice:
    """The voice server for one `FakeDiscord`; joins through the main gateway's op 4."""

    def __init__(self, discord: Any, *, dave: bool = False) -> None:
        self.discord = discord
        self.dave_enabled = dave
        self.dave: DaveGateway | None = None
        """The channel's DAVE group, once someone joined it."""
        self.dave_members: dict[int, DaveMember] = {}
        self.session: _VoiceSession | None = None
        self.identifies = 0
        self.resumes = 0
        self.bot_packets: list[tuple[bytes, bytes]] = []
        """``(rtp header, decrypted payload)`` of every packet the bot sent (with DAVE on,
        decrypted end to end too, by a fake user's session)."""
        self.undecryptable = 0
        self.bot_address: tuple[str, int] | None = None
        self._counters = itertools.count()
        self._rtp_positions: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self._media: _Media | None = None
        self._tmp = tempfile.TemporaryDirectory()
        self._ssl = _certificate(Path(self._tmp.name))
        self._ssrcs = itertools.count(1000)
        self._sessions = itertools.count(1)
        self.ws_port = 0
        self.udp_port = 0
        self.down = False
        """While True the voice websocket refuses connections (503): the server is gone."""
        self._previous: Any = None

    async def __aenter__(self) -> FakeVoice:
        app = web.Application()
        app.router.add_get("/", self._voice_gateway)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self.ws_port = self._runner.addresses[0][1]
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Media(self), local_addr=("127.0.0.1", 0)
        )
        self._media = protocol
        self.udp_port = transport.get_extra_info("sockname")[1]
        self._previous, self.discord.voice = self.discord.voice, self
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.discord.voice is self:  # a server entered before this one serves again
            self.discord.voice = self._previous
        await self.kick()
        if self._media is not None and self._media.transport is not None:
            self._media.transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._tmp.cleanup()

    @staticmethod
    def connector() -> aiohttp.TCPConnector:
        """For the test's discord.Client: accept the fake's self-signed certificate."""
        return aiohttp.TCPConnector(ssl=False)

    # -- what tests do -------------------------------------------------------------------

    async def kick(self, code: int = 4015) -> None:
        """Drop the voice websocket (4015: voice server crashed; the client resumes)."""
        session = self.session  # kept: the client may RESUME it
        if session is not None and not session.ws.closed:
            await session.ws.close(code=code)

    async def go_down(self) -> None:
        """The voice server goes away: the socket drops and new connections are refused."""
        self.down = True
        self.bot_address = None
        await self.kick(4015)

    def come_back(self) -> None:
        self.down = False

    async def move_bot_here(self, guild: Any) -> None:
        """Discord moves the bot's call to this voice server (a region change): the main
        gateway sends VOICE_SERVER_UPDATE with this server's endpoint."""
        await self.discord.dispatch(
            "VOICE_SERVER_UPDATE",
            {
                "token": "fake-voice-token",
                "guild_id": str(guild.id),
                "endpoint": f"127.0.0.1:{self.ws_port}",
            },
        )

    async def disconnect_bot(self, guild: Any) -> None:
        """A moderator disconnects the bot: its voice state leaves the channel, the socket
        closes with 4014 (discord.py then cleans its voice client up for good)."""
        session = self.session
        state = guild.voice.get(self.discord.bot.id)
        if state is not None:
            state.channel_id = None
            await self.discord.dispatch(
                "VOICE_STATE_UPDATE", guild.voice_payload(state), GUILD_VOICE_STATES
            )
        if session is not None and not session.ws.closed:
            await session.ws.close(code=4014)

    def dave_group(self, channel_id: int) -> DaveGateway:
        if self.dave is None:
            self.dave = DaveGateway(channel_id)
        assert self.dave.group_id == channel_id.to_bytes(8, "big"), "one channel per server"
        return self.dave

    async def dave_join(self, member: Member, channel_id: int) -> DaveMember:
        """``member``'s Discord client connects to this voice server with DAVE on."""
        dave = DaveMember(self.dave_group(channel_id), member.user.id)
        self.dave_members[member.user.id] = dave
        await dave.join()
        return dave

    async def dave_leave(self, member: Member) -> None:
        dave = self.dave_members.pop(member.user.id)
        await dave.leave()

    async def speak_as(self, member: Member, ssrc: int, payloads: list[bytes]) -> None:
        """Announce ``member`` on ``ssrc``, then send ``payloads`` paced 20 ms apart
        (DAVE-encrypted first by the member's own session when they joined with DAVE)."""
        session = self.session
        assert session is not None and self.bot_address is not None, "bot not connected"
        await self.push(
            {"op": 5, "d": {"user_id": str(member.user.id), "ssrc": ssrc, "speaking": 1}}
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = self._rtp_positions.get(ssrc, 0)  # a stream goes on where it stopped
        self._rtp_positions[ssrc] = first + len(payloads)
        for i, payload in enumerate(payloads):
            n = first + i
            header = struct.pack(">BBHII", 0x90, 0x78, n & 0xFFFF, (n * 960) & 0xFFFFFFFF, ssrc)
            header += struct.pack(">HH", 0xBEDE, 1)
            dave = self.dave_members.get(member.user.id)
            if dave is not None:
                payload = dave.encrypt(payload)
            body = b"\x10\x01\x00\x00" + payload  # one-byte extension, then Opus
            session = self.session
            # Media flows only once the client has its key (after SELECT_PROTOCOL).
            if session is not None and session.key and self._media and self._media.transport:
                datagram = seal(session.mode, session.key, header, body, next(self._counters))
                self._media.transport.sendto(datagram, self.bot_address)
            # a live speaker's pace: the bridge's jitter buffers play in real time
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.020 - loop.time()))

    async def push(self, message: dict[str, Any]) -> None:
        session = self.session
        assert session is not None
        await session.ws.send_str(json.dumps(message))

    # -- main gateway op 4 ---------------------------------------------------------------

    async def voice_state_request(self, data: dict[str, Any]) -> None:
        guild = self.discord.guilds[int(data["guild_id"])]
        bot = self.discord.bot.id
        channel_id = int(data["channel_id"]) if data.get("channel_id") else None
        current = guild.voice.get(bot)
        if channel_id is not None and current is not None and current.channel_id == channel_id:
            # Already there (a resume re-sends op 4): Discord echoes the voice state and
            # allocates no new voice server, so no VOICE_SERVER_UPDATE.
            await self.discord.dispatch(
                "VOICE_STATE_UPDATE", guild.voice_payload(current), GUILD_VOICE_STATES
            )
            return
        if channel_id is None:
            state = guild.voice.get(bot) or VoiceState(bot, None)
            state.channel_id = None
        else:
            stage = self.discord.channels[channel_id].type == STAGE
            state = VoiceState(bot, channel_id, suppress=stage)
            state.session_id = f"voice-session-{next(self._sessions)}"
        guild.voice[bot] = state
        await self.discord.dispatch(
            "VOICE_STATE_UPDATE", guild.voice_payload(state), GUILD_VOICE_STATES
        )
        if channel_id is not None:
            await self.discord.dispatch(
                "VOICE_SERVER_UPDATE",
                {
                    "token": "fake-voice-token",
                    "guild_id": str(guild.id),
                    "endpoint": f"127.0.0.1:{self.ws_port}",
                },
            )

    # -- voice gateway -------------------------------------------------------------------

    async def _voice_gateway(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="voice server unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _VoiceSession(ws)
        await ws.send_str(json.dumps({"op": 8, "d": {"heartbeat_interval": 5000}}))
        async for frame in ws:
            if frame.type == WSMsgType.BINARY and session.dave and self.dave is not None:
                await self.dave.receive(session.user_id, frame.data[0], frame.data[1:])
                continue
            if frame.type != WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            op, d = message.get("op"), message.get("d") or {}
            if op == 0:  # IDENTIFY
                if d.get("token") != "fake-voice-token":
                    await ws.close(code=4004)
                    break
                self.identifies += 1
                session.guild_id = int(d["server_id"])
                session.user_id = int(d["user_id"])
                session.dave = self.dave_enabled and d.get("max_dave_protocol_version", 0) >= 1
                session.ssrc = next(self._ssrcs)
                self.session = session
                ready = {
                    "ssrc": session.ssrc,
                    "ip": "127.0.0.1",
                    "port": self.udp_port,
                    "modes": MODES,
                    "heartbeat_interval": 1,
                }
                await ws.send_str(json.dumps({"op": 2, "d": ready}))
            elif op == 1:  # SELECT_PROTOCOL
                session.mode = d["data"]["mode"]
                session.key = os.urandom(32)
                description = {
                    "mode": session.mode,
                    "secret_key": list(session.key),
                    "dave_protocol_version": 1 if session.dave else 0,
                }
                await ws.send_str(json.dumps({"op": 4, "d": description}))
                if session.dave:
                    guild = self.discord.guilds[session.guild_id]
                    channel_id = guild.voice[session.user_id].channel_id
                    await self.dave_group(channel_id).connect(_DaveConnection(session))
            elif op in (23, 31) and session.dave and self.dave is not None:
                await self.dave.receive(session.user_id, op, d)  # transition ready, invalid
            elif op == 3:  # HEARTBEAT
                await ws.send_str(json.dumps({"op": 6, "d": {"t": d.get("t")}}))
            elif op == 5:  # SPEAKING
                session.speaking.append(d)
            elif op == 7:  # RESUME
                previous = self.session
                if previous is None or d.get("session_id") is None:
                    await ws.close(code=4006)
                    break
                self.resumes += 1
                session.mode, session.key, session.ssrc = previous.mode, previous.key, previous.ssrc
                session.guild_id, session.user_id = previous.guild_id, previous.user_id
                session.dave, session.sequence = previous.dave, previous.sequence
                self.session = session
                await ws.send_str(json.dumps({"op": 9, "d": None}))
                if session.dave and self.dave is not None:
                    await self.dave.reattach(_DaveConnection(session))
        return ws

    def received(self, datagram: bytes) -> None:
        session = self.session
        if session is None or not session.key or len(datagram) < 32:
            return
        try:
            header, body = unseal(session.mode, session.key, datagram)
            if session.dave:
                body = self._dave_decrypt(session.user_id, body)
        except Exception:
            self.undecryptable += 1
            return
        self.bot_packets.append((header, body))

    def _dave_decrypt(self, user_id: int, payload: bytes) -> bytes:
        """End-to-end decrypt what the bot sent, as the first fake user hears it."""
        listener = next((m for m in self.dave_members.values() if m.ready), None)
        if listener is None:
            raise ValueError("nobody in the DAVE group to hear the bot")
        return listener.decrypt(user_id, payload)
