"""Turns domain events into direct messages for the people they concern.

The wording lives here once; each adapter only renders `DirectMessage` for its platform.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.commands.times import format_when
from bot.core import Core
from bot.events import DirectMessage, SpaceCancelled, StageChanged, TicketClosed, TicketIssued
from bot.money import format_minor
from bot.views import room_link

_STAGE_WORDS = {
    "promoted": "You are now a speaker in {title}. Your microphone turns on in the room.",
    "demoted": "You are a listener again in {title}.",
    "muted": "A moderator muted you in {title}.",
    "unmuted": "You were unmuted in {title}.",
    "removed": "A moderator removed you from {title}.",
}


class Notices:
    def __init__(self, core: Core) -> None:
        self.core = core
        bus = core.bus
        bus.subscribe(TicketIssued, self.on_ticket_issued)
        bus.subscribe(TicketClosed, self.on_ticket_closed)
        bus.subscribe(StageChanged, self.on_stage_changed)
        bus.subscribe(SpaceCancelled, self.on_cancelled)

    def _dm(self, key: str, text: str, links: tuple[tuple[str, str], ...] = ()) -> None:
        self.core.bus.publish(DirectMessage(identity_key=key, text=text, links=links))

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
        for ticket_id in event.ticket_ids:
            ticket = await core.tickets.get(ticket_id)
            if ticket.price_minor:
                lines.append(
                    f"Ticket {ticket.id}: paid {format_minor(ticket.price_minor, ticket.currency)}"
                    f" (platform fee {format_minor(ticket.fee_minor, ticket.currency)}). "
                    f"Full refund until {core.settings.refund_cutoff_hours} h before the start."
                )
            else:
                lines.append(f"Ticket {ticket.id} (free).")
            url = room_link(
                core.settings.resolved_public_url,
                event.space_id,
                core.tickets.token_for(ticket, space),
            )
            links.append(("Join the room", url))
        self._dm(event.holder_key, "\n".join(lines), tuple(links))

    async def on_ticket_closed(self, event: TicketClosed) -> None:
        space = await self.core.spaces.get(event.space_id)
        what = "refunded" if event.refunded else "cancelled"
        self._dm(
            event.holder_key,
            f"Your ticket {event.ticket_id} for {space.title} was {what}. {event.reason}".strip(),
        )

    async def on_stage_changed(self, event: StageChanged) -> None:
        words = _STAGE_WORDS.get(event.change)
        if words and event.identity_key != event.actor_key:
            space = await self.core.spaces.get(event.space_id)
            self._dm(event.identity_key, words.format(title=space.title))

    async def on_cancelled(self, event: SpaceCancelled) -> None:
        space = await self.core.spaces.get(event.space_id)
        host = await self.core.identities.get(space.host_id)
        if host.key != event.actor_key:
            reason = f" Reason: {event.reason}" if event.reason else ""
            self._dm(host.key, f"Your Space {space.title} (#{space.id}) was cancelled.{reason}")
