"""Turns domain events into messages for the people they concern.

The wording lives here once. Direct messages go out as `DirectMessage` events that each
adapter renders for its platform. Posts for a community's channel (a public tip's
thank-you, the moderators' dispute alert) are worded by `tip_thanks` and `dispute_alert`,
which adapters call with people named the way their platform names them (mentions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.commands.times import format_delta, format_when
from bot.core import Core
from bot.events import (
    LatePaymentRefunded,
    PaymentDisputed,
    SpaceCancelled,
    SpaceEnded,
    SpaceStarted,
    SpaceUpdated,
    StageChanged,
    TicketClosed,
    TicketIssued,
    TipReceived,
    WaitlistOffered,
)
from bot.models import Identity, Space
from bot.money import format_minor
from bot.refund_policy import holder_terms
from bot.wording import TEST_MODE, change_lines, room_link, ticket_link

_STAGE_WORDS = {
    "promoted": "You are now a speaker in {title}. Your microphone turns on in the room.",
    "invited": "You are invited to speak in {title}: join with your ticket and you are on "
    "stage as a speaker.",
    "demoted": "You are a listener again in {title}.",
    "muted": "A moderator muted you in {title}.",
    "unmuted": "You were unmuted in {title}.",
    "removed": "A moderator removed you from {title}.",
    "allowed": "A moderator let you back into {title}; your ticket admits you again.",
}

#: edits every ticket holder is told of (a price cannot change once tickets are sold)
_HOLDERS_HEAR_OF = ("title", "starts_at", "duration_minutes")


def tip_thanks(
    event: TipReceived, *, tipper: str, host: str, quote: Callable[[str], str] = str
) -> str:
    """The public thank-you for a tip. `tipper` and `host` as the platform shows people;
    `quote` makes the tipper's message safe to show there (Slack's escaping, say)."""
    amount = format_minor(event.amount_minor, event.currency)
    note = f': "{quote(event.message)}"' if event.message else ""
    return f"Thank you {tipper} for tipping {host} {amount}{note}"


def _dispute_reason(event: PaymentDisputed) -> str:
    return f" ({event.reason.replace('_', ' ')})" if event.reason else ""


def dispute_alert(
    event: PaymentDisputed, space: Space, *, buyer: str, quote: Callable[[str], str] = str
) -> str:
    """What a community's moderators are told about a disputed payment (the host gets a
    DM of their own); `buyer` as the platform shows people, `quote` as for `tip_thanks`."""
    amount = format_minor(event.amount_minor, event.currency)
    return (
        f"Moderators: a payment for #{space.id} {quote(space.title)} was disputed with the "
        f"buyer's bank{_dispute_reason(event)}: {amount} from {buyer}. "
        f"Ticket(s) {', '.join(event.ticket_ids)} were revoked."
    )


class EventMessenger:
    """DMs the people each domain event concerns (receipts, refunds, stage changes, a
    cancelled Space...), through the outbox; subscribes itself to the core's bus."""

    def __init__(self, core: Core) -> None:
        self.core = core
        bus = core.bus
        bus.subscribe(TicketIssued, self.on_ticket_issued)
        bus.subscribe(TicketClosed, self.on_ticket_closed)
        bus.subscribe(StageChanged, self.on_stage_changed)
        bus.subscribe(SpaceCancelled, self.on_cancelled)
        bus.subscribe(SpaceUpdated, self.on_updated)
        bus.subscribe(SpaceStarted, self.on_started)
        bus.subscribe(SpaceEnded, self.on_ended)
        bus.subscribe(PaymentDisputed, self.on_payment_disputed)
        bus.subscribe(LatePaymentRefunded, self.on_late_payment_refunded)
        bus.subscribe(TipReceived, self.on_tip_received)
        bus.subscribe(WaitlistOffered, self.on_waitlist_offered)

    async def _dm(self, key: str, text: str, links: tuple[tuple[str, str], ...] = ()) -> None:
        """Through the outbox: kept until the person's platform has it (bot/outbox.py)."""
        await self.core.outbox.send(key, text, links)

    @property
    def test_mode(self) -> bool:
        """Whether payments are simulated (billing's keyless TEST MODE): then no receipt
        may say that anyone paid. Only billing's gateway can be in TEST MODE."""
        return self.core.payments.test_mode

    async def on_ticket_issued(self, event: TicketIssued) -> None:
        core = self.core
        space = await core.spaces.get(event.space_id)
        holder = await core.identities.by_key(event.holder_key)
        if holder is None:
            return
        tz = ZoneInfo(holder.tz)
        links = []
        lines = [
            f"Your ticket for {space.title} (#{space.id}) — "
            f"starts {format_when(space.starts_at, tz)}."
        ]
        terms = holder_terms(space, core.settings, core.clock.now(), tz)
        test_mode = self.test_mode
        for ticket_id in event.ticket_ids:
            ticket = await core.tickets.get(ticket_id)
            if ticket.price_minor:
                price = format_minor(ticket.price_minor, ticket.currency)
                fee = format_minor(ticket.fee_minor, ticket.currency)
                paid = (
                    f"{TEST_MODE}: a test purchase at {price} (platform fee {fee}), "
                    "nothing was charged"
                    if test_mode
                    else f"paid {price} (platform fee {fee})"
                )
                lines.append(f"Ticket {ticket.id}: {paid}. {terms}")
            else:
                lines.append(f"Ticket {ticket.id} (free).")
            url = room_link(
                core.settings.resolved_public_url,
                event.space_id,
                core.tickets.token_for(ticket, space),
            )
            links.append(("Join the room", url))
            manage = core.my_tickets.link_token(ticket)
            public = core.settings.resolved_public_url
            links.append(("Manage my ticket", ticket_link(public, ticket.id, manage)))
        await self._dm(event.holder_key, "\n".join(lines), tuple(links))

    async def on_waitlist_offered(self, event: WaitlistOffered) -> None:
        space = await self.core.spaces.get(event.space_id)
        holder = await self.core.identities.by_key(event.buyer_key)
        tz = ZoneInfo(holder.tz if holder is not None else "UTC")
        pay = (
            "Pay to make it yours"
            if event.pay_url
            else "The pay link could not be opened just now; find it with /ticket show"
        )
        await self._dm(
            event.buyer_key,
            f"A seat of {space.title} (#{space.id}) came free and is held for you until "
            f"{format_when(event.expires_at, tz)}. {pay}; unpaid, it goes to the next "
            "person in line.",
            (("Pay now", event.pay_url),) if event.pay_url else (),
        )

    async def on_ticket_closed(self, event: TicketClosed) -> None:
        space = await self.core.spaces.get(event.space_id)
        what = "refunded" if event.refunded else "cancelled"
        await self._dm(
            event.holder_key,
            f"Your ticket {event.ticket_id} for {space.title} was {what}. {event.reason}".strip(),
        )

    async def on_stage_changed(self, event: StageChanged) -> None:
        words = _STAGE_WORDS.get(event.change)
        if words and event.identity_key != event.actor_key:
            space = await self.core.spaces.get(event.space_id)
            await self._dm(event.identity_key, words.format(title=space.title))

    async def on_cancelled(self, event: SpaceCancelled) -> None:
        space = await self.core.spaces.get(event.space_id)
        host = await self.core.identities.get(space.host_id)
        if host.key != event.actor_key:
            reason = f" Reason: {event.reason}" if event.reason else ""
            live = " It was live: it ended, and every ticket is refunded." if event.was_live else ""
            await self._dm(
                host.key, f"Your Space {space.title} (#{space.id}) was cancelled.{reason}{live}"
            )

    async def _tell_holders(
        self, space: Space, actor_key: str | None, words: Callable[[Identity], str]
    ) -> None:
        """DM every ticket holder (but the person who acted), worded for each (their zone)."""
        assert space.id is not None
        holders = [h for h in await self.core.tickets.holders(space.id) if h.key != actor_key]
        await asyncio.gather(*(self._dm(h.key, words(h)) for h in holders))

    async def _tell_host(self, space: Space, actor_key: str | None, did: str) -> None:
        """When a co-host or moderator `did` something to a host's Space, the host hears."""
        host = await self.core.identities.get(space.host_id)
        if actor_key is None or actor_key == host.key:
            return
        actor = await self.core.identities.by_key(actor_key)
        name = actor.display_name if actor is not None else "A moderator"
        await self._dm(host.key, f"{name} {did} your Space {space.title} (#{space.id}).")

    async def on_updated(self, event: SpaceUpdated) -> None:
        changes = tuple(c for c in event.changes if c.name in _HOLDERS_HEAR_OF)
        if not changes:
            return
        space = await self.core.spaces.get(event.space_id)

        def words(holder: Identity) -> str:
            lines = change_lines(space, changes, ZoneInfo(holder.tz))
            return (
                f"{space.title} (#{space.id}), which you have a ticket for, changed:\n"
                + "\n".join(lines)
                + "\nYour ticket stays valid; see /space info "
                + str(space.id)
                + "."
            )

        await self._tell_holders(space, event.actor_key, words)

    async def on_started(self, event: SpaceStarted) -> None:
        space = await self.core.spaces.get(event.space_id)
        await self._tell_host(space, event.actor_key, "started")
        if not event.early_minutes:
            return
        early = format_delta(timedelta(minutes=event.early_minutes))

        def words(holder: Identity) -> str:
            announced = format_when(space.starts_at, ZoneInfo(holder.tz))
            return (
                f"{space.title} (#{space.id}) started early: it was announced for "
                f"{announced} ({early} from now) and is live now. "
                "Join from your ticket link, or /ticket show."
            )

        await self._tell_holders(space, event.actor_key, words)

    async def on_ended(self, event: SpaceEnded) -> None:
        space = await self.core.spaces.get(event.space_id)
        await self._tell_host(space, event.actor_key, "ended")
        await self._tell_holders(
            space,
            event.actor_key,
            lambda holder: f"{space.title} (#{space.id}) has ended. Thanks for listening!",
        )

    async def _space_staff_keys(self, space_id: int) -> tuple[str, list[str]]:
        """The host's key and the co-hosts' keys of a Space."""
        space = await self.core.spaces.get(space_id)
        host = await self.core.identities.get(space.host_id)
        cohosts = await self.core.identities.keys_for(await self.core.spaces.cohost_ids(space_id))
        return host.key, [c.key for c in cohosts.values()]

    async def on_payment_disputed(self, event: PaymentDisputed) -> None:
        space = await self.core.spaces.get(event.space_id)
        amount = format_minor(event.amount_minor, event.currency)
        text = (
            f"A payment of {amount} for {space.title} (#{space.id}) was disputed with the "
            f"buyer's bank{_dispute_reason(event)}. "
            f"Ticket(s) {', '.join(event.ticket_ids)} were revoked. "
            "Stripe will ask for evidence by email; the platform operator has the details."
        )
        host_key, cohost_keys = await self._space_staff_keys(event.space_id)
        for key in (host_key, *cohost_keys):
            await self._dm(key, text)

    async def on_late_payment_refunded(self, event: LatePaymentRefunded) -> None:
        space = await self.core.spaces.get(event.space_id)
        amount = format_minor(event.amount_minor, event.currency)
        why = (
            "the Space was cancelled"
            if event.space_cancelled
            else "your hold had expired and the Space sold out in the meantime"
        )
        await self._dm(
            event.buyer_key,
            f"Your payment of {amount} for {space.title} (#{space.id}) arrived after {why}, "
            "so no ticket could be issued. It was refunded in full; banks take 5-10 days "
            "to show it.",
        )

    async def on_tip_received(self, event: TipReceived) -> None:
        tipper = await self.core.identities.by_key(event.tipper_key)
        name = tipper.display_name if tipper else "Someone"
        amount = format_minor(event.amount_minor, event.currency)
        where = ""
        if event.space_id is not None:
            space = await self.core.spaces.get(event.space_id)
            where = f" for {space.title}"
        note = f': "{event.message}"' if event.message else "."
        await self._dm(event.host_key, f"{name} tipped you {amount}{where}{note}")
        await self._dm(
            event.tipper_key,
            f"Thank you! Your tip of {amount} ({TEST_MODE}) was recorded; nothing was charged."
            if self.test_mode
            else f"Thank you! Your tip of {amount} is on its way to the host.",
        )


class CancelProgress:
    """Tells the host how a cancellation's refunds are going: a DM at each quarter of a
    long run, and one at the end (a `ProgressFn` for `TicketService.cancel_space`)."""

    def __init__(self, core: Core, host_key: str, space: Space) -> None:
        self.core = core
        self.host_key = host_key
        self.space = space
        self._told = -1

    async def __call__(self, done: int, total: int) -> None:
        quarter = (4 * done) // total if total else 4
        if done != total and (total < 8 or quarter == self._told):
            return
        self._told = quarter
        state = "all done" if done == total else "in progress"
        await self.core.outbox.send(
            self.host_key,
            f"Refunds for {self.space.title} (#{self.space.id}): {done} of {total} "
            f"ticket(s) handled, {state}.",
        )
