"""The base of the services behind a signed link from chat: the host's desk
(`bot.services.hostdesk`) and a holder's own ticket page (`bot.services.mytickets`).

Both read a Space, its tickets, stage and recordings, and sign and check their links.
"""

from __future__ import annotations

from bot.services.context import Service, ServiceContext
from bot.services.replays import ReplayService
from bot.services.spaces import SpaceService
from bot.services.stage import StageService
from bot.services.tickets import TicketService
from bot.tokens import TokenSigner


class LinkService(Service):
    """A service reached by a signed link: the Space services it reads, and its signer."""

    def __init__(
        self,
        ctx: ServiceContext,
        spaces: SpaceService,
        tickets: TicketService,
        stage: StageService,
        replays: ReplayService,
        signer: TokenSigner,
    ) -> None:
        super().__init__(ctx)
        self.spaces = spaces
        self.tickets = tickets
        self.stage = stage
        self.replays = replays
        self.signer = signer
