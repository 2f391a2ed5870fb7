"""Signed in on the web: a chat identity carried by a short-lived signed cookie, so a buyer
can buy on a Space's public page or redeem an invite there through the same claims as chat.

Nobody signs in with a password: a person arrives through a link the bot sent them in chat
(the manage-my-ticket link, or the sign-in link of `/ticket show`), which names their chat
identity in a signed token. The web then keeps a *session* token (kind "web", good for
`SESSION_TTL`) in an HttpOnly, SameSite cookie; every request re-reads the identity it
names. A web buyer is the `Actor` of that identity with no platform rights: buying needs
none (the claim desk applies the seat rule, holds, the per-buyer limit and promo codes the
same for everyone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.actors import Actor
from bot.errors import NotFound
from bot.models import Identity
from bot.services.context import Service, ServiceContext
from bot.tokens import InvalidToken, TicketClaims, TokenSigner

SIGNIN_KIND = "signin"
SESSION_KIND = "web"
SIGNIN_LINK_TTL = timedelta(hours=24)
"""How long a sign-in link from chat works (as long as a manage link)."""
SESSION_TTL = timedelta(hours=2)
"""How long a web session lasts once signed in (a new link signs in again)."""


@dataclass(frozen=True, slots=True)
class WebBuyer:
    """A signed-in person: their identity, the `Actor` claims are made as, and the token
    their cookie holds."""

    identity: Identity
    actor: Actor
    session: str


def actor_of(identity: Identity) -> Actor:
    """The `Actor` a chat identity is on the web: the same key, no platform rights."""
    _, _, community = identity.community_id.partition(":")
    return Actor(
        identity.platform,
        community,
        identity.user_id,
        identity.display_name,
        tz=identity.tz,
    )


class WebSignIn(Service):
    def __init__(self, ctx: ServiceContext, signer: TokenSigner) -> None:
        super().__init__(ctx)
        self.signer = signer

    def _token(self, identity: Identity, kind: str, ttl: timedelta) -> str:
        assert identity.id is not None
        return self.signer.sign(
            TicketClaims(
                ticket_id=kind,
                space_id=0,
                holder_key=str(identity.id),
                role="buyer",
                expires_at=self.clock.now() + ttl,
                kind=kind,
            )
        )

    def link_token(self, identity: Identity) -> str:
        """A sign-in token for a link the bot sends `identity` in chat."""
        return self._token(identity, SIGNIN_KIND, SIGNIN_LINK_TTL)

    def session_for(self, identity: Identity) -> str:
        """A session token for `identity` (the manage page signs its holder in with it)."""
        return self._token(identity, SESSION_KIND, SESSION_TTL)

    async def sign_in(self, link_token: str) -> WebBuyer:
        """The buyer a sign-in link names, with a fresh session (`InvalidToken` when the
        link is forged, expired or of another kind)."""
        identity = await self._identity(link_token, SIGNIN_KIND)
        return WebBuyer(identity, actor_of(identity), self.session_for(identity))

    async def buyer(self, session: str) -> WebBuyer:
        """Who a session cookie names now (`InvalidToken` when forged, expired, unknown)."""
        identity = await self._identity(session, SESSION_KIND)
        return WebBuyer(identity, actor_of(identity), session)

    async def _identity(self, token: str, kind: str) -> Identity:
        claims = self.signer.verifier.verify(token, now=self.clock.now(), kind=kind)
        try:
            return await self.identities.get(int(claims.holder_key))
        except (NotFound, ValueError):
            raise InvalidToken("This sign-in is not valid any more.") from None
