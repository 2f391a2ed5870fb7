"""One participant's live WebRTC session in a room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection

from audio.admission import Admission, Role
from audio.fanout import PacketTrack
from audio.jitter import JitterBuffer

logger = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class PeerSession:
    """A participant's peer connection, incoming jitter buffer and outgoing packet track.

    ``role`` and ``muted`` start from the admission and change with `Room.set_speaker` and
    `Room.set_muted`; the microphone is mixed exactly when `mixed` is true.
    """

    admission: Admission
    pc: RTCPeerConnection
    inbound: JitterBuffer
    outbound: PacketTrack
    role: Role
    joined_at: float
    muted: bool = False
    ssrc: int | None = None
    closed: bool = False
    packets_in: int = 0
    _closing: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def identity_key(self) -> str:
        return self.admission.identity_key

    @property
    def ticket_id(self) -> str | None:
        return self.admission.ticket_id

    @property
    def display_name(self) -> str:
        return self.admission.display_name

    @property
    def mixed(self) -> bool:
        """True when this participant's microphone goes into the mix."""
        return self.role.on_stage and not self.muted and not self.closed

    async def close(self) -> None:
        """End the outgoing track and close the peer connection (idempotent).

        The close runs as this session's own task and is shielded: a caller cancelled while
        waiting (a drop task at room shutdown) never leaves the connection half-closed,
        which aiortc does not survive (a second close then fails on an internal future).
        Every caller, and `Room.close`, awaits the same task.
        """
        self.closed = True
        self.outbound.stop()
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(
                close_peer(self.pc), name=f"close-{self.identity_key}"
            )
        await asyncio.shield(self._closing)


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close ``pc``; if aiortc cannot (a negotiation that failed half-way can leave a
    transceiver without its transport), stop every transport still reachable, so no ICE
    socket outlives the session."""
    try:
        await pc.close()
    except Exception as exc:
        logger.info("closing a peer connection failed (%s); stopping its transports", exc)
        for transceiver in pc.getTransceivers():
            with contextlib.suppress(Exception):
                await transceiver.stop()
            for dtls in {transceiver.receiver.transport, transceiver.sender.transport}:
                if dtls is None:
                    continue
                with contextlib.suppress(Exception):
                    await dtls.stop()
                with contextlib.suppress(Exception):
                    await dtls.transport.stop()
