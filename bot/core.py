"""The core's services, built once and shared by every adapter, the HTTP app and CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.announcements import AnnouncementLinks
from bot.clock import Clock, SystemClock
from bot.db import Database
from bot.encryption import Cipher, settings_cipher
from bot.events import EventBus
from bot.files import private_dir
from bot.outbox import Outbox
from bot.ports import NoPayments, PaymentGateway
from bot.services.communities import CommunityService
from bot.services.context import Service, ServiceContext
from bot.services.hostdesk import HostDeskService
from bot.services.identities import IdentityService
from bot.services.invites import InviteService
from bot.services.mytickets import MyTicketService
from bot.services.promos import PromoService
from bot.services.reminders import ReminderService
from bot.services.replays import ReplayService
from bot.services.spaces import SpaceService
from bot.services.stage import StageService
from bot.services.tickets import TicketService
from bot.services.waitlist import WaitlistService
from bot.services.websignin import WebSignIn
from bot.settings import Settings
from bot.tokens import TokenSigner, load_signing_key


@dataclass
class Core(Service):
    """The services, and (as `Service`) their shared context's parts by name: `settings`,
    `db`, `bus`, `clock`, `identities`, `payments`."""

    ctx: ServiceContext
    signer: TokenSigner
    spaces: SpaceService
    tickets: TicketService
    stage: StageService
    reminders: ReminderService
    #: direct messages kept until delivered; each adapter registers the platform it serves
    outbox: Outbox
    #: encrypts the secrets kept in the database (Slack OAuth tokens)
    cipher: Cipher
    #: the host's desk: holders, sales and refunds of a Space (web and `/space tickets`)
    host_desk: HostDeskService
    #: hosts' promo codes (redeemed by the claim batcher)
    promos: PromoService
    #: recordings for ticket holders after the end, within the host's window
    replays: ReplayService
    #: a holder's manage-my-ticket page (its link, refund, replays)
    my_tickets: MyTicketService
    #: buyers signed in on the web through a link the bot sent (buy, redeem invites)
    web: WebSignIn
    #: links to each Space's announcement in chat (the chat adapters register finders)
    announcements: AnnouncementLinks = field(default_factory=AnnouncementLinks)

    @property
    def invites(self) -> InviteService:
        """Invite links (redeemed as claims: tickets)."""
        return self.tickets.invites

    @property
    def waitlist(self) -> WaitlistService:
        """Lines for sold-out Spaces (offers are made where seats are freed: tickets)."""
        return self.tickets.waitlist

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        db: Database | None = None,
        clock: Clock | None = None,
        payments: PaymentGateway | None = None,
        signer: TokenSigner | None = None,
        cipher: Cipher | None = None,
    ) -> Core:
        private_dir(settings.data_dir)
        db = db or Database(settings.resolved_database_url)
        clock = clock or SystemClock()
        bus = EventBus()
        payments = payments or NoPayments()
        if signer is None:
            secret = settings.signing_key.get_secret_value() if settings.signing_key else None
            signer = TokenSigner(load_signing_key(secret, settings.data_dir))
        ctx = ServiceContext(db, bus, clock, settings, IdentityService(db, clock), payments)
        spaces = SpaceService(ctx)
        tickets = TicketService(ctx, spaces, signer)
        stage = StageService(ctx, spaces)
        replays = ReplayService(ctx, spaces)
        return cls(
            ctx,
            signer,
            spaces,
            tickets,
            stage,
            ReminderService(ctx, spaces),
            Outbox(db, bus, clock),
            cipher or settings_cipher(settings),
            HostDeskService(ctx, spaces, tickets, stage, replays, signer),
            promos=PromoService(ctx, spaces),
            replays=replays,
            my_tickets=MyTicketService(ctx, spaces, tickets, stage, replays, signer),
            web=WebSignIn(ctx, signer),
        )

    @property
    def communities(self) -> CommunityService:
        """Linked communities and where each Space is announced."""
        return self.spaces.communities

    def use_payments(self, payments: PaymentGateway) -> None:
        """Swap the payment gateway (billing's installer does this once billing is built)."""
        self.ctx.payments = payments

    async def close(self) -> None:
        await self.tickets.claims.close()
        await self.tickets.confirmations.close()
        await self.outbox.close()
        await self.bus.close()
        await self.db.dispose()
