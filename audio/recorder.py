"""Recording a room: the listeners' mix, as the mixer already encodes it, muxed into Ogg.

No re-encode: every Opus packet the mixer hands to listeners is also copied (its bytes, a
hundred or so) into a `Recorder`, and a worker thread muxes it into an Ogg/Opus file with
PyAV. File work stays off the event loop, as in aiortc's ``MediaRecorder``; the mixer only
pays a ``put_nowait``.

Timestamps are the recorder's own count of packets, so a recording is one contiguous
stream starting at zero, whatever the mixer's tick was when it started. A recording is
written to ``<name>.partial`` and renamed to its final name when it closes cleanly: a file
with the final name is always a finished, valid Ogg stream.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from pathlib import Path
from typing import Final

import av
from av.container import OutputContainer
from av.packet import Packet
from av.stream import Stream

from audio.errors import RecordingFailed
from audio.opus import FRAME_SAMPLES, SAMPLE_RATE, TIME_BASE
from bot.files import private_dir, private_file

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX: Final = ".partial"
DEFAULT_QUEUE_PACKETS: Final = 500
"""Packets waiting for the disk before new ones are dropped: 10 s of audio."""


class Recorder:
    """Writes encoded Opus packets to one Ogg file. Use `open`, then `write`, then `aclose`.

    `write` never blocks and never raises: a full queue (the disk stalled for seconds) drops
    the packet and counts it in `dropped`.
    """

    def __init__(self, path: Path, *, max_queue: int = DEFAULT_QUEUE_PACKETS) -> None:
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queue)
        self._container: OutputContainer | None = None
        self._stream: Stream | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.packets = 0
        self.dropped = 0
        self.error: BaseException | None = None

    @property
    def seconds(self) -> float:
        """Audio written so far."""
        return self.packets * FRAME_SAMPLES / SAMPLE_RATE

    async def open(self) -> None:
        """Create the file (in a thread) and start the writer; raises `RecordingFailed`."""
        if self._thread is not None or self._closed:
            raise RuntimeError("a Recorder is opened once")
        try:
            await asyncio.to_thread(self._open_file)
        except (OSError, av.error.FFmpegError) as exc:
            logger.error("cannot record to %s: %s", self.path, exc)
            raise RecordingFailed("The recording could not be started.") from exc
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{self.path.name}", daemon=True
        )
        self._thread.start()

    def _open_file(self) -> None:
        private_dir(self.path.parent)
        container = av.open(str(private_file(self.partial)), "w", format="ogg")
        # The stream's libopus context is only opened by PyAV to write the OpusHead header;
        # it matches the mixer's encoders (mono, 48 kHz) and encodes nothing.
        self._stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        self._container = container

    def write(self, packet: Packet[Stream]) -> None:
        """Queue one packet (called by the mixer on the event loop)."""
        if self._closed or self._thread is None:
            return
        try:
            self._queue.put_nowait(bytes(packet))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 500 == 0:
                logger.warning("recorder %s is behind; %d packets dropped", self.path, self.dropped)

    def _run(self) -> None:
        container, stream = self._container, self._stream
        assert container is not None and stream is not None
        written = 0
        try:
            while (payload := self._queue.get()) is not None:
                packet = Packet(payload)
                packet.pts = packet.dts = written * FRAME_SAMPLES
                packet.duration = FRAME_SAMPLES
                packet.time_base = TIME_BASE
                packet.stream = stream
                container.mux(packet)
                written += 1
                self.packets = written
        except BaseException as exc:
            self.error = exc
            logger.exception("recording %s failed after %d packets", self.path, written)
            # Keep taking packets so the mixer never sees a full queue, until told to stop.
            while self._queue.get() is not None:
                pass
        finally:
            try:
                container.close()
            except Exception as exc:  # e.g. the disk filled up while writing the trailer
                self.error = self.error or exc
                logger.exception("closing recording %s failed", self.path)

    async def aclose(self) -> Path | None:
        """Finish the file and give its final path; None if nothing was written.

        After a write error the packets written before it are kept: Ogg pages decode on
        their own, so a truncated recording still plays up to where it stopped.
        """
        if self._closed:
            return self.path if self.path.exists() else None
        self._closed = True
        if self._thread is None:
            return None
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(self._thread.join)
        if self.packets == 0:
            await asyncio.to_thread(self.partial.unlink, missing_ok=True)
            return None
        await asyncio.to_thread(self.partial.replace, self.path)
        logger.info("recorded %.1f s to %s", self.seconds, self.path)
        return self.path
