"""Prometheus metrics of the HTTP app and of the core's domain events.

HTTP requests are labelled by method, route *template* (`/api/v1/spaces/{space_id}`, never
the raw path) and status, so label cardinality stays bounded whatever clients send; a
request no route matched is counted under `<unmatched>`. Domain counters follow the event
bus, so tickets issued from Discord, Slack or the API count alike.

Metric families are created once per `CollectorRegistry` (prometheus_client refuses a name
twice in one registry): `core_metrics(registry)` returns a cached `CoreMetrics`. A bus is
watched at most once, however many apps are built on the same core.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.events import (
    EventBus,
    HoldCreated,
    HoldReleased,
    SpaceAnnounced,
    SpaceCancelled,
    SpaceEnded,
    SpaceEvent,
    SpaceStarted,
    TicketClosed,
    TicketIssued,
)

UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TRANSITIONS: dict[type[SpaceEvent], str] = {
    SpaceAnnounced: "announced",
    SpaceStarted: "started",
    SpaceEnded: "ended",
    SpaceCancelled: "cancelled",
}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CoreMetrics:
    """Every metric family the HTTP app defines, in one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.http_requests = Counter(
            "stagepass_http_requests",
            "HTTP requests answered, by route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.http_latency = Histogram(
            "stagepass_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_in_flight = Gauge(
            "stagepass_http_requests_in_flight",
            "HTTP requests being answered right now.",
            registry=registry,
        )
        self.http_unhandled = Counter(
            "stagepass_http_unhandled_errors",
            "Requests that failed with an unexpected error.",
            registry=registry,
        )
        self.tickets_issued = Counter(
            "stagepass_tickets_issued",
            "Tickets issued: free claims and paid confirmations.",
            registry=registry,
        )
        self.tickets_closed = Counter(
            "stagepass_tickets_closed",
            "Tickets that stopped being valid, by outcome.",
            ("outcome",),
            registry=registry,
        )
        self.holds_created = Counter(
            "stagepass_holds_created",
            "Holds taken on seats.",
            registry=registry,
        )
        self.holds_released = Counter(
            "stagepass_holds_released",
            "Holds given back unpaid, by reason.",
            ("reason",),
            registry=registry,
        )
        self.spaces = Counter(
            "stagepass_space_transitions",
            "Spaces announced, started, ended and cancelled.",
            ("transition",),
            registry=registry,
        )
        self._watched: weakref.WeakSet[EventBus] = weakref.WeakSet()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def watch(self, bus: EventBus) -> None:
        """Count the core's domain events (once per bus)."""
        if bus in self._watched:
            return
        self._watched.add(bus)
        bus.subscribe(TicketIssued, self._on_ticket_issued)
        bus.subscribe(TicketClosed, self._on_ticket_closed)
        bus.subscribe(HoldCreated, self._on_hold_created)
        bus.subscribe(HoldReleased, self._on_hold_released)
        for event_type in _TRANSITIONS:
            bus.subscribe(event_type, self._on_space_transition)

    def exposition(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def _on_ticket_issued(self, event: TicketIssued) -> None:
        self.tickets_issued.inc(len(event.ticket_ids))

    async def _on_ticket_closed(self, event: TicketClosed) -> None:
        self.tickets_closed.labels("refunded" if event.refunded else "revoked").inc()

    async def _on_hold_created(self, event: HoldCreated) -> None:
        self.holds_created.inc()

    async def _on_hold_released(self, event: HoldReleased) -> None:
        self.holds_released.labels("expired" if event.expired else "released").inc()

    async def _on_space_transition(self, event: SpaceEvent) -> None:
        self.spaces.labels(_TRANSITIONS[type(event)]).inc()


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, CoreMetrics] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def core_metrics(registry: CollectorRegistry = REGISTRY) -> CoreMetrics:
    """The `CoreMetrics` of `registry`, created on first use."""
    with _lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = CoreMetrics(registry)
            _by_registry[registry] = metrics
        return metrics
