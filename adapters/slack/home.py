"""The App Home tab: upcoming Spaces here, your tickets with their join links, your
reminders, and the Spaces you host with their sales and Start / End / Cancel buttons.

Published when someone opens the tab (`app_home_opened`) and when they do something
their tab shows (buy a ticket, set a reminder, host), never for every viewer on every
sale: Slack allows about 100 `views.publish` a minute per workspace, and a sold-out
Space would spend that on tabs nobody is looking at. A tab is drawn fresh on each open.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from adapters.slack.blocks import (
    Block,
    actions,
    button,
    confirm,
    context,
    date_token,
    divider,
    escape,
    header,
    section,
)
from adapters.slack.clients import WebClients
from adapters.slack.messages import LINK, RUN, buy_button
from adapters.slack.people import slack_user
from bot.coalescing import Coalescer
from bot.core import Core
from bot.models import Identity, Platform, Space, SpaceStatus, Ticket
from bot.money import format_minor
from bot.wording import price, room_link, seats_left, seats_taken, space_title

log = structlog.get_logger(__name__)

HOST_A_SPACE = "open_create"  # action_id of the tab's "Host a Space" button
_SHOWN = 10  # per list; the tab holds at most 100 blocks


def _more(count: int, what: str) -> list[Block]:
    extra = count - _SHOWN
    return [context(f"…and {extra} more {what}. See `/space list`.")] if extra > 0 else []


def _when(space: Space) -> str:
    live = " :red_circle: *LIVE*" if space.status == SpaceStatus.LIVE else ""
    return f"{date_token(space.starts_at)}{live}"


class Home:
    def __init__(self, core: Core, clients: WebClients, coalescer: Coalescer) -> None:
        self.core = core
        self.clients = clients
        self.coalescer = coalescer

    async def refresh(self, team_id: str, user_id: str) -> None:
        await self.coalescer.run(
            ("home", team_id, user_id), lambda: self._publish(team_id, user_id)
        )

    async def refresh_people(self, keys: Iterable[str]) -> None:
        """Refresh the tab of everyone named by `keys` (identity keys; Slack people only)."""
        people = {found for key in keys if (found := slack_user(key)) is not None}
        for team, user in sorted(people):
            await self.refresh(team, user)

    async def _publish(self, team_id: str, user_id: str) -> None:
        client = await self.clients.for_team(team_id)
        if client is None:
            return
        await client.views_publish(user_id=user_id, view=await self.view(team_id, user_id))

    # --- what it shows ---------------------------------------------------------------------

    async def view(self, team_id: str, user_id: str) -> dict[str, Any]:
        core = self.core
        community = f"{Platform.SLACK.value}:{team_id}"
        me = await core.identities.by_key(f"{community}:{user_id}")
        spaces = await core.spaces.list_spaces(community, listed_only=True)
        tickets = await core.tickets.tickets_of(me.id) if me and me.id is not None else []
        reminded = (
            {s.id for s in spaces[:50] if me.id in await core.reminders.subscribers(s.id or 0)}
            if me
            else set()
        )
        blocks: list[Block] = [
            header("Stagepass"),
            section(
                "Ticketed live-audio Spaces in this workspace. Tickets, join links and "
                "reminders arrive in this app's *Messages* tab; Spaces play in your browser."
            ),
            actions(button("Host a Space", HOST_A_SPACE, style="primary")),
            divider(),
            *self._upcoming(spaces, me, {t.space_id for t in tickets}, reminded),
            divider(),
            *await self._tickets(tickets),
            divider(),
            *self._reminders([s for s in spaces if s.id in reminded]),
        ]
        hosted = [s for s in spaces if me is not None and s.host_id == me.id]
        if hosted and me is not None:
            blocks += [divider(), *self._hosting(hosted, me)]
        return {"type": "home", "blocks": blocks[:100]}

    def _upcoming(
        self, spaces: list[Space], me: Identity | None, held: set[int], reminded: set[int | None]
    ) -> list[Block]:
        blocks: list[Block] = [section("*Upcoming Spaces*")]
        if not spaces:
            return [*blocks, context("Nothing planned yet. Host one with the button above.")]
        for space in spaces[:_SHOWN]:
            notes = [escape(price(space)), f"Tickets left: {seats_left(space)}"]
            if space.id in held:
                notes.append(":admission_tickets: you have a ticket")
            if space.id in reminded:
                notes.append(":bell: reminder on")
            blocks.append(
                section(f"*{escape(space_title(space))}* — {_when(space)}\n" + " · ".join(notes))
            )
            elements = []
            if me is None or space.host_id != me.id:
                if space.id not in held:
                    elements.append(buy_button(space, f"{RUN}:buy:{space.id}"))
                if space.id not in reminded and space.status == SpaceStatus.SCHEDULED:
                    elements.append(
                        button(
                            "Remind me", f"{RUN}:remind:{space.id}", value=f"/remind on {space.id}"
                        )
                    )
            if elements:
                blocks.append(actions(*elements))
        return blocks + _more(len(spaces), "Spaces")

    async def _tickets(self, tickets: list[Ticket]) -> list[Block]:
        core = self.core
        blocks: list[Block] = [section("*Your tickets*")]
        if not tickets:
            return [*blocks, context("No tickets yet.")]
        for ticket in tickets[:_SHOWN]:
            space = await core.spaces.get(ticket.space_id)
            holder = await core.identities.get(ticket.holder_id)
            seat = await core.stage.seat(space, holder)  # the core's seat rule
            accessory = None
            note = ""
            if seat.removed:
                note = " · removed from the stage by a moderator (until /stage allow)"
            elif space.status in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE):
                url = room_link(
                    core.settings.resolved_public_url,
                    ticket.space_id,
                    core.tickets.token_for(ticket, space),
                )
                accessory = button("Join", f"{LINK}:join:{ticket.id}", url=url)
            blocks.append(
                section(
                    f"*{escape(space_title(space))}* — {_when(space)}\nTicket `{ticket.id}`{note}",
                    accessory=accessory,
                )
            )
        return blocks + _more(len(tickets), "tickets")

    def _reminders(self, spaces: list[Space]) -> list[Block]:
        blocks: list[Block] = [section("*Your reminders*")]
        if not spaces:
            return [*blocks, context("None set. Use *Remind me* on a Space.")]
        for space in spaces[:_SHOWN]:
            off = button("Turn off", f"{RUN}:unremind:{space.id}", value=f"/remind off {space.id}")
            blocks.append(
                section(f":bell: *{escape(space_title(space))}* — {_when(space)}", accessory=off)
            )
        return blocks + _more(len(spaces), "reminders")

    def _hosting(self, spaces: list[Space], me: Identity) -> list[Block]:
        core = self.core
        blocks: list[Block] = [section("*Spaces you host*")]
        for space in spaces[:_SHOWN]:
            sales = f"Seats: {seats_taken(space)}"
            if not space.is_free:
                gross = format_minor(space.sold * space.price_minor, space.currency)
                sales += f" · {escape(price(space))} each · up to {gross}"
            blocks.append(section(f"*{escape(space_title(space))}* — {_when(space)}\n{sales}"))
            elements = []
            if space.status == SpaceStatus.SCHEDULED:
                elements.append(
                    button(
                        "Start",
                        f"{RUN}:start:{space.id}",
                        style="primary",
                        value=f"/space start {space.id}",
                    )
                )
                elements.append(
                    button(
                        "Cancel",
                        f"{RUN}:cancel:{space.id}",
                        value=f"/space cancel {space.id}",
                        style="danger",
                        confirm=confirm(
                            "Cancel this Space?",
                            f"*{escape(space.title)}* is cancelled and every ticket refunded.",
                            "Cancel the Space",
                        ),
                    )
                )
            elif space.status == SpaceStatus.LIVE:
                url = room_link(
                    core.settings.resolved_public_url,
                    space.id or 0,
                    core.tickets.staff_token(space, me, "host"),
                )
                elements.append(
                    button("Open the room", f"{LINK}:room:{space.id}", url=url, style="primary")
                )
                elements.append(
                    button("End", f"{RUN}:end:{space.id}", value=f"/space end {space.id}")
                )
            if elements:
                blocks.append(actions(*elements))
        return blocks + _more(len(spaces), "of your Spaces")
