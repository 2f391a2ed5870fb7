"""Prometheus metrics for live rooms, labelled by room (the Space id).

Metric families are created once per `CollectorRegistry` (prometheus_client refuses the same
name twice in one registry), so `audio_metrics(registry)` returns a cached `AudioMetrics`;
tests pass their own registry and never touch the global one. A room takes a `RoomMetrics`,
its bound children, and removes its series when it closes so ended Spaces do not linger.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class AudioMetrics:
    """The metric families of the audio room in one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ("room",)
        self.listeners = Gauge(
            "stagepass_audio_listeners",
            "Participants hearing the listener mix.",
            labels,
            registry=registry,
        )
        self.speakers = Gauge(
            "stagepass_audio_speakers",
            "Participants on stage (host, cohost, speaker).",
            labels,
            registry=registry,
        )
        self.packets_sent = Counter(
            "stagepass_audio_packets_sent",
            "Opus packets handed to participants' senders.",
            labels,
            registry=registry,
        )
        self.packets_dropped = Counter(
            "stagepass_audio_packets_dropped",
            "Outgoing packets dropped because a participant's sender fell behind.",
            labels,
            registry=registry,
        )
        self.packets_lost = Counter(
            "stagepass_audio_packets_lost",
            "Incoming speaker packets missing at their playout slot (concealed).",
            labels,
            registry=registry,
        )
        self.packets_late = Counter(
            "stagepass_audio_packets_late",
            "Incoming speaker packets dropped because they arrived after their slot.",
            labels,
            registry=registry,
        )
        self.listener_paths = Gauge(
            "stagepass_audio_listener_paths",
            "Listeners served by the last listener packet, by path: fast (the fast lane) or "
            "aiortc (the per-sender path).",
            ("room", "path"),
            registry=registry,
        )
        self.tick_lateness = Histogram(
            "stagepass_audio_mixer_tick_lateness_seconds",
            "How late each 20 ms mixer tick started.",
            labels,
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.ticks_skipped = Counter(
            "stagepass_audio_mixer_ticks_skipped",
            "Mixer ticks skipped because the process fell too far behind.",
            labels,
            registry=registry,
        )

    def room(self, space_id: int) -> RoomMetrics:
        """Children bound to one room's label."""
        label = str(space_id)
        return RoomMetrics(
            owner=self,
            label=label,
            listeners=self.listeners.labels(label),
            speakers=self.speakers.labels(label),
            packets_sent=self.packets_sent.labels(label),
            packets_dropped=self.packets_dropped.labels(label),
            packets_lost=self.packets_lost.labels(label),
            packets_late=self.packets_late.labels(label),
            listeners_fast=self.listener_paths.labels(label, "fast"),
            listeners_aiortc=self.listener_paths.labels(label, "aiortc"),
            tick_lateness=self.tick_lateness.labels(label),
            ticks_skipped=self.ticks_skipped.labels(label),
        )

    def forget(self, label: str) -> None:
        """Remove every series of one room."""
        for family in (
            self.listeners,
            self.speakers,
            self.packets_sent,
            self.packets_dropped,
            self.packets_lost,
            self.packets_late,
            self.tick_lateness,
            self.ticks_skipped,
        ):
            family.remove(label)  # a no-op for series the room never touched
        for path in ("fast", "aiortc"):
            self.listener_paths.remove(label, path)


@dataclass(frozen=True, slots=True)
class RoomMetrics:
    """One room's metric children (thread-safe, like every prometheus_client metric)."""

    owner: AudioMetrics
    label: str
    listeners: Gauge
    speakers: Gauge
    packets_sent: Counter
    packets_dropped: Counter
    packets_lost: Counter
    packets_late: Counter
    listeners_fast: Gauge
    listeners_aiortc: Gauge
    tick_lateness: Histogram
    ticks_skipped: Counter

    def paths(self, delivered: int, fast: int) -> None:
        """Count the listeners of the last listener packet by path."""
        self.listeners_fast.set(fast)
        self.listeners_aiortc.set(delivered - fast)

    def forget(self) -> None:
        """Drop this room's series from the registry (call when the room closes)."""
        self.owner.forget(self.label)


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, AudioMetrics] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def audio_metrics(registry: CollectorRegistry = REGISTRY) -> AudioMetrics:
    """The `AudioMetrics` of ``registry``, created on first use."""
    with _lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = AudioMetrics(registry)
            _by_registry[registry] = metrics
        return metrics
