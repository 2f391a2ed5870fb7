"""What every core service works with, held once and shared.

The services read the database, the event bus, the clock, the settings, the identities
and the payment gateway through one `ServiceContext`, so swapping the gateway (billing
does, once built) or the settings (tests do) changes it for every service at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.db import Database
from bot.events import EventBus
from bot.ports import PaymentGateway
from bot.services.identities import IdentityService
from bot.settings import Settings


@dataclass
class ServiceContext:
    db: Database
    bus: EventBus
    clock: Clock
    settings: Settings
    identities: IdentityService
    payments: PaymentGateway


class Service:
    """A core service: its context's parts, by name."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def bus(self) -> EventBus:
        return self.ctx.bus

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def identities(self) -> IdentityService:
        return self.ctx.identities

    @property
    def payments(self) -> PaymentGateway:
        return self.ctx.payments
