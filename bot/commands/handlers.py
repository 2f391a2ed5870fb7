"""Runs typed commands against the services and words the replies.

Handlers are looked up by command type in a registry; outer packages (billing,
scheduler) register handlers for the commands they own (`/payouts`, `/tip`, `/slot`).
Until they do, those commands answer that the feature is not configured.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from bot.actors import Actor
from bot.commands import types as t
from bot.commands.desk import desk_page
from bot.commands.grammar import help_text, parse
from bot.commands.times import format_when
from bot.core import Core
from bot.errors import NotConfigured, UserError
from bot.models import BridgeMode, SpaceStatus
from bot.notices import CancelProgress
from bot.permissions import staff_role
from bot.replies import Button, Reply
from bot.services.communities import label
from bot.services.invites import short_id
from bot.services.promos import PromoDraft
from bot.services.refusals import BuyerLimitReached
from bot.services.tickets import Reservation
from bot.wording import (
    TEST_MODE,
    change_lines,
    desk_link,
    hold_line,
    invite_line,
    invite_link,
    promo_line,
    recording_line,
    replay_window,
    room_link,
    space_buttons,
    space_lines,
    space_title,
    ticket_line,
    ticket_link,
    waitlist_lines,
    web_signin_link,
)

log = structlog.get_logger(__name__)

Handler = Callable[[Actor, Any], Awaitable[Reply]]

_BRIDGE_TEXT = {
    BridgeMode.OFF: "off",
    BridgeMode.LISTEN: "on (in a voice channel only hosts speak)",
    BridgeMode.SPEAK: "on (in a voice channel ticket holders speak too)",
}


class Dispatcher:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._handlers: dict[type, Handler] = {
            t.CreateSpace: self.create_space,
            t.ListSpaces: self.list_spaces,
            t.ShowSpace: self.show_space,
            t.EditSpace: self.edit_space,
            t.CancelSpace: self.cancel_space,
            t.StartSpace: self.start_space,
            t.EndSpace: self.end_space,
            t.SetCohost: self.set_cohost,
            t.ManageSpace: self.manage_space,
            t.ListSpaceTickets: self.space_tickets,
            t.SpaceReplays: self.space_replays,
            t.PromoCommand: self.promo,
            t.BuyTicket: self.buy_ticket,
            t.JoinWaitlist: self.waitlist,
            t.MakeInvite: self.make_invite,
            t.ListInvites: self.list_invites,
            t.RevokeInvite: self.revoke_invite,
            t.RedeemInvite: self.redeem_invite,
            t.ShowTickets: self.show_tickets,
            t.RefundTicket: self.refund_ticket,
            t.SetReminder: self.set_reminder,
            t.StageCommand: self.stage,
            t.SetTimezone: self.timezone,
            t.CommunityCommand: self.community,
            t.Help: self.help,
            t.Tip: self._not_configured("Tips need billing, which is not configured yet."),
            t.PayoutsCommand: self._not_configured(
                "Payouts need billing, which is not configured yet."
            ),
            t.SlotCommand: self._not_configured(
                "Slots need the scheduler, which is not configured yet."
            ),
        }

    def register(self, command_type: type, handler: Handler) -> None:
        """Let an outer package take over a command type."""
        self._handlers[command_type] = handler

    @staticmethod
    def _not_configured(message: str) -> Handler:
        async def handler(actor: Actor, command: Any) -> Reply:
            raise NotConfigured(message)

        return handler

    async def tz_of(self, actor: Actor) -> ZoneInfo:
        return ZoneInfo((await self.core.identities.ensure(actor)).tz)

    async def handle(self, actor: Actor, text: str) -> Reply:
        """Parse and run one command line; every outcome is a reply, never an exception."""
        try:
            command = parse(
                text,
                tz=await self.tz_of(actor),
                now=self.core.clock.now(),
                default_currency=self.core.settings.default_currency,
            )
        except UserError as exc:
            return Reply(exc.message, error=True, error_field=exc.field)
        return await self.execute(actor, command)

    async def execute(self, actor: Actor, command: t.Command) -> Reply:
        try:
            t.refuse_nul(command)
            return await self._handlers[type(command)](actor, command)
        except UserError as exc:
            return Reply(exc.message, error=True, error_field=exc.field)
        except Exception:
            ref = secrets.token_hex(3)
            log.exception(
                "command failed", ref=ref, command=type(command).__name__, actor=actor.key
            )
            return Reply(
                f"Something went wrong on our side and it was logged (ref {ref}). "
                "Nothing was changed; please try again.",
                error=True,
            )

    # --- spaces --------------------------------------------------------------------------

    async def _space_reply(
        self,
        actor: Actor,
        space_id: int,
        *,
        ephemeral: bool = True,
        prefix: str = "",
        line: bool = True,
    ) -> Reply:
        core = self.core
        space = await core.spaces.get_in(space_id, actor.community_id)
        host = await core.identities.get(space.host_id)
        lines = space_lines(space, host, await self.tz_of(actor), core.clock.now())
        if line:  # a new Space has no waitlist yet
            lines += await self._line_lines(actor, space_id)
        return Reply(
            (prefix + "\n" if prefix else "") + "\n".join(lines),
            ephemeral=ephemeral,
            title=space_title(space),
            buttons=space_buttons(space),
        )

    async def _line_lines(self, actor: Actor, space_id: int) -> list[str]:
        """The waitlist as `actor` may see it: the host's staff see the line, a person in
        it their place."""
        core = self.core
        space = await core.spaces.get(space_id)
        if staff_role(await core.spaces.roles(space, actor)) is not None:
            line = await core.waitlist.line(space_id)
            return waitlist_lines(line) if line.waiting or line.offered else []
        me = await core.identities.ensure(actor)
        assert me.id is not None
        place = await core.waitlist.place_of(me.id, space_id)
        return [] if place is None else [f"You are number {place} in line for a seat."]

    async def create_space(self, actor: Actor, cmd: t.CreateSpace) -> Reply:
        space = await self.core.spaces.create(actor, cmd.draft)
        assert space.id is not None
        shared = await self.core.communities.shared_with(space.id)
        also = ""
        if shared:
            names = {c.id: label(c) for c in await self.core.communities.linked(actor.community_id)}
            also = " It is announced in " + ", ".join(names.get(c, c) for c in shared) + " too."
        return await self._space_reply(
            actor,
            space.id,
            ephemeral=False,
            line=False,
            prefix=f"Space #{space.id} is announced.{also} Your desk (holders, sales, "
            f"refunds): /space manage {space.id}.",
        )

    async def list_spaces(self, actor: Actor, cmd: t.ListSpaces) -> Reply:
        spaces = await self.core.spaces.list_spaces(actor.community_id, listed_only=True)
        if not spaces:
            return Reply("No upcoming Spaces here. Host one with /space create.")
        tz = await self.tz_of(actor)
        from bot.wording import price

        lines = [
            f"#{s.id} {s.title} — {format_when(s.starts_at, tz)} — {price(s)} — "
            f"{s.tickets_left} left" + (" — LIVE" if s.status == SpaceStatus.LIVE else "")
            for s in spaces
        ]
        return Reply("\n".join(lines), title="Spaces")

    async def show_space(self, actor: Actor, cmd: t.ShowSpace) -> Reply:
        return await self._space_reply(actor, cmd.space_id)

    async def edit_space(self, actor: Actor, cmd: t.EditSpace) -> Reply:
        edit = await self.core.spaces.edit(actor, cmd.space_id, cmd.changes)
        if not edit.changes:
            return await self._space_reply(
                actor, cmd.space_id, prefix="Nothing changed: those are the current values."
            )
        lines = change_lines(edit.space, edit.changes, await self.tz_of(actor))
        prefix = "Updated:\n" + "\n".join(lines)
        if cmd.changes.voice_bridge is not None:
            mode = self.core.spaces.bridge_mode(edit.space)
            prefix += f"\nDiscord voice bridge: {_BRIDGE_TEXT[mode]}."
        return await self._space_reply(actor, cmd.space_id, prefix=prefix)

    async def cancel_space(self, actor: Actor, cmd: t.CancelSpace) -> Reply:
        core = self.core
        space = await core.spaces.get_in(cmd.space_id, actor.community_id)
        host = await core.identities.get(space.host_id)
        done, failed = await core.tickets.cancel_space(
            actor,
            cmd.space_id,
            cmd.reason,
            progress=CancelProgress(core, host.key, space),
            confirm_live=cmd.confirm,
        )
        ended = " It was live and has ended." if space.status == SpaceStatus.LIVE else ""
        text = (
            f"Space #{cmd.space_id} is cancelled.{ended} "
            f"{done} ticket(s) refunded or voided. Every holder is told by DM."
        )
        if failed:
            text += f" {failed} refund(s) failed and will be retried automatically."
        return Reply(text, ephemeral=False)

    async def start_space(self, actor: Actor, cmd: t.StartSpace) -> Reply:
        space = await self.core.spaces.start(actor, cmd.space_id, confirm=cmd.confirm)
        link = room_link(
            self.core.settings.resolved_public_url,
            cmd.space_id,
            await self.core.tickets.staff_pass(actor, space),
        )
        desk = desk_link(
            self.core.settings.resolved_public_url,
            cmd.space_id,
            await self.core.host_desk.link_token(actor, cmd.space_id),
        )
        return Reply(
            f"Space #{cmd.space_id} is live.",
            ephemeral=True,
            buttons=(Button("Open the room", url=link), Button("Open your desk", url=desk)),
        )

    async def end_space(self, actor: Actor, cmd: t.EndSpace) -> Reply:
        await self.core.spaces.end(actor, cmd.space_id)
        return Reply(f"Space #{cmd.space_id} has ended. Thanks for hosting!", ephemeral=False)

    async def manage_space(self, actor: Actor, cmd: t.ManageSpace) -> Reply:
        token = await self.core.host_desk.link_token(actor, cmd.space_id)
        url = desk_link(self.core.settings.resolved_public_url, cmd.space_id, token)
        return Reply(
            f"Your desk for Space #{cmd.space_id}: holders, sales and refunds. The link is "
            "yours alone and works for an hour.",
            ephemeral=True,
            buttons=(Button("Open your desk", url=url),),
        )

    async def space_tickets(self, actor: Actor, cmd: t.ListSpaceTickets) -> Reply:
        tz = await self.tz_of(actor)
        sheet = await self.core.host_desk.sheet_for(actor, cmd.space_id, tz)
        text, title = desk_page(sheet, cmd.page, tz)
        return Reply(text, ephemeral=True, title=title)

    async def space_replays(self, actor: Actor, cmd: t.SpaceReplays) -> Reply:
        replays = self.core.replays
        if cmd.delete is not None:
            await replays.delete(actor, cmd.space_id, cmd.delete)
            return Reply(f"Recording {cmd.delete} of Space #{cmd.space_id} is deleted.")
        space, parts = await replays.of_host(actor, cmd.space_id)
        tz = await self.tz_of(actor)
        lines = [replay_window(replays, space, tz)]
        lines += [recording_line(p) for p in parts] or ["No recordings."]
        if parts:
            lines.append(f"Delete one with /space replays {cmd.space_id} delete:N")
        return Reply("\n".join(lines), title=f"Recordings of #{cmd.space_id}")

    async def set_cohost(self, actor: Actor, cmd: t.SetCohost) -> Reply:
        await self.core.spaces.set_cohost(actor, cmd.space_id, cmd.user, cmd.add)
        who = cmd.user.display_name or cmd.user.user_id
        return Reply(
            f"{who} is {'now' if cmd.add else 'no longer'} a co-host of Space #{cmd.space_id}."
        )

    async def promo(self, actor: Actor, cmd: t.PromoCommand) -> Reply:
        promos, tz = self.core.promos, await self.tz_of(actor)
        if cmd.code is None:
            space, codes = await promos.list_codes(actor, cmd.space_id)
            if not codes:
                return Reply(
                    f"Space #{cmd.space_id} has no promo codes. Make one with "
                    f"/space promo {cmd.space_id} code:EARLY percent:20 uses:50"
                )
            now = self.core.clock.now()
            lines = [promo_line(p, space.currency, tz, now) for p in codes]
            return Reply("\n".join(lines), title=f"Promo codes of #{cmd.space_id}")
        if cmd.active is not None:
            promo = await promos.set_active(actor, cmd.space_id, cmd.code, cmd.active)
            state = "on" if promo.active else "off"
            return Reply(f"{promo.code} is {state} for Space #{cmd.space_id}.")
        assert cmd.uses is not None
        draft = PromoDraft(cmd.code, cmd.uses, cmd.percent, cmd.amount, cmd.until)
        promo = await promos.create(actor, cmd.space_id, draft)
        space = await self.core.spaces.get(cmd.space_id)
        return Reply(
            f"{promo_line(promo, space.currency, tz, self.core.clock.now())}\n"
            f"Buyers enter it with /ticket buy {cmd.space_id} code:{promo.code}"
        )

    # --- tickets -------------------------------------------------------------------------

    async def make_invite(self, actor: Actor, cmd: t.MakeInvite) -> Reply:
        invite = await self.core.invites.create(actor, cmd.space_id, cmd.uses)
        page = invite_link(self.core.settings.resolved_public_url, invite.token)
        return Reply(
            f"An invite to Space #{cmd.space_id}, good for {cmd.uses} ticket(s). Share this "
            f"with the people you invite; each gets a ticket on the web at {page}\n"
            f"or in chat with:\n/ticket redeem {invite.token}"
        )

    async def list_invites(self, actor: Actor, cmd: t.ListInvites) -> Reply:
        invites = self.core.invites
        space, links = await invites.list_links(actor, cmd.space_id)
        if not links:
            return Reply(
                f"Space #{cmd.space_id} has no invite links. Make one with "
                f"/space invite {cmd.space_id} uses:10"
            )
        tz, now = await self.tz_of(actor), self.core.clock.now()
        lines = [invite_line(link, invites.expires_at(space), tz, now) for link in links]
        if any(link.revoked_at is None for link in links):
            lines.append(f"Withdraw one with /space invite {cmd.space_id} revoke:ID")
        return Reply("\n".join(lines), title=f"Invite links of #{cmd.space_id}")

    async def revoke_invite(self, actor: Actor, cmd: t.RevokeInvite) -> Reply:
        revoked = await self.core.invites.revoke(actor, cmd.space_id, cmd.invite_id)
        link = revoked.link
        return Reply(
            f"Invite {short_id(link)} of Space #{cmd.space_id} is withdrawn: it got "
            f"{link.uses} of its {link.max_uses} ticket(s), and gets no more. Tickets "
            "already got through it stay."
        )

    async def redeem_invite(self, actor: Actor, cmd: t.RedeemInvite) -> Reply:
        return await self._reserved(actor, await self.core.tickets.redeem(actor, cmd.token), 1)

    async def buy_ticket(self, actor: Actor, cmd: t.BuyTicket) -> Reply:
        try:
            res = await self.core.tickets.reserve(actor, cmd.space_id, cmd.quantity, code=cmd.code)
        except BuyerLimitReached as exc:
            pay = (Button(f"Pay #{cmd.space_id}", url=exc.pay_url),) if exc.pay_url else ()
            return Reply(exc.message, error=True, buttons=pay)
        return await self._reserved(actor, res, cmd.quantity)

    async def _reserved(self, actor: Actor, res: Reservation, quantity: int) -> Reply:
        """A claim's reply: the tickets, or the hold and where to pay for it."""
        if res.tickets:
            ids = ", ".join(ticket.id for ticket in res.tickets)
            return Reply(
                f"You're in! Ticket {ids} for {res.space.title}. "
                "Your join link is in your direct messages."
            )
        assert res.checkout is not None
        tz = await self.tz_of(actor)
        mode = f" ({TEST_MODE})" if res.checkout.test_mode else ""
        return Reply(
            f"{quantity} ticket(s) for {res.space.title} are held for you until "
            f"{format_when(res.hold.expires_at, tz)}. Pay to confirm{mode}.",
            buttons=(Button("Pay now", url=res.checkout.url),),
        )

    async def waitlist(self, actor: Actor, cmd: t.JoinWaitlist) -> Reply:
        if cmd.leave:
            await self.core.waitlist.leave(actor, cmd.space_id)
            return Reply(f"You left the waitlist of Space #{cmd.space_id}.")
        place = await self.core.waitlist.join(actor, cmd.space_id)
        return Reply(
            f"You are number {place} in line for Space #{cmd.space_id}. When a seat comes "
            "free it is held for you and I send you the link to pay by DM. Leave the line "
            f"with /ticket waitlist {cmd.space_id} leave."
        )

    async def show_tickets(self, actor: Actor, cmd: t.ShowTickets) -> Reply:
        core = self.core
        me = await core.identities.ensure(actor)
        assert me.id is not None
        tickets = await core.tickets.tickets_of(me.id, cmd.space_id)
        holds = await core.tickets.pending_holds(me.id, cmd.space_id)
        if not tickets and not holds:
            signin = web_signin_link(core.settings.resolved_public_url, core.web.link_token(me))
            return Reply(
                "You have no valid tickets. Find a Space with /space list, or on the web "
                "(this link signs you in there, so you can buy on a Space's page).",
                buttons=(Button("Find Spaces on the web", url=signin),),
            )
        tz = await self.tz_of(actor)
        public = core.settings.resolved_public_url
        lines, buttons, pay = [], [], []
        for ticket in tickets:
            space = await core.spaces.get(ticket.space_id)
            seat = await core.stage.seat(space, me)
            line = f"{ticket_line(ticket, seat)} — {space_title(space)}"
            replays = await core.replays.available(space)
            until = core.replays.until(space)
            if replays and until is not None:
                line += f" — {len(replays)} replay(s) until {format_when(until, tz)}"
            lines.append(line)
            if seat.may_listen and space.status in (SpaceStatus.SCHEDULED, SpaceStatus.LIVE):
                url = room_link(public, ticket.space_id, core.tickets.token_for(ticket, space))
                buttons.append(Button(f"Join #{space.id}", url=url))
            manage = ticket_link(public, ticket.id, core.my_tickets.link_token(ticket))
            label = f"Replays #{space.id}" if replays else f"Manage {ticket.id[:6]}"
            buttons.append(Button(label, url=manage))
        for hold in holds:
            space = await core.spaces.get(hold.space_id)
            link = await core.payments.pay_link(hold)
            lines.append(
                f"{hold_line(hold, tz)} — {space_title(space)}"
                + ("" if link else " (the pay link is unavailable right now)")
            )
            if link:
                pay.append(Button(f"Pay #{space.id}", url=link))
        # a pending hold lapses soonest: its Pay button first (platforms show only five)
        return Reply("\n".join(lines), title="Your tickets", buttons=tuple([*pay, *buttons][:5]))

    async def refund_ticket(self, actor: Actor, cmd: t.RefundTicket) -> Reply:
        ticket = await self.core.tickets.refund_one(actor, cmd.ticket_id)
        return Reply(f"Ticket {ticket.id} is {ticket.status.value}.")

    async def set_reminder(self, actor: Actor, cmd: t.SetReminder) -> Reply:
        await self.core.reminders.set(actor, cmd.space_id, cmd.on)
        if cmd.on:
            return Reply(f"I'll remind you before Space #{cmd.space_id} starts.")
        return Reply(f"Reminders for Space #{cmd.space_id} are off.")

    # --- stage ---------------------------------------------------------------------------

    async def stage(self, actor: Actor, cmd: t.StageCommand) -> Reply:
        stage = self.core.stage
        space_id = cmd.space_id or (await stage.find_live(actor)).id
        assert space_id is not None
        who = cmd.user.display_name or cmd.user.user_id if cmd.user else ""
        match cmd.verb:
            case "request":
                await stage.raise_hand(actor, space_id, True)
                return Reply("You asked to speak; a moderator will see your raised hand.")
            case "hand":
                await stage.raise_hand(actor, space_id, cmd.up)
                return Reply("Hand raised." if cmd.up else "Hand lowered.")
            case "queue":
                state = await stage.queue(actor, space_id)
                speakers = (
                    ", ".join(
                        s.identity.display_name + (" (muted)" if s.seat.muted else "")
                        for s in state.speakers
                    )
                    or "none"
                )
                hands = ", ".join(s.identity.display_name for s in state.queue) or "none"
                return Reply(
                    f"Speakers: {speakers}\nRaised hands: {hands}", title=f"Stage of #{space_id}"
                )
        assert cmd.user is not None
        actions = {
            "promote": (stage.promote, "{} is now a speaker."),
            "invite": (stage.invite, "{} is invited to speak: a speaker on joining."),
            "demote": (stage.demote, "{} is a listener again."),
            "remove": (stage.remove, "{} was removed from the Space."),
            "allow": (stage.allow, "{} may join the Space's stage again."),
        }
        if cmd.verb in actions:
            run, words = actions[cmd.verb]
            await run(actor, space_id, cmd.user)
            return Reply(words.format(who), ephemeral=False)
        muted = cmd.verb == "mute"
        await stage.mute(actor, space_id, cmd.user, muted)
        return Reply(f"{who} is {'muted' if muted else 'unmuted'}.", ephemeral=False)

    # --- the rest ------------------------------------------------------------------------

    async def timezone(self, actor: Actor, cmd: t.SetTimezone) -> Reply:
        if cmd.zone is None:
            tz = await self.tz_of(actor)
            return Reply(f"Your time zone is {tz.key}. Change it with /tz set Europe/Berlin.")
        identity = await self.core.identities.set_timezone(actor, cmd.zone)
        now = format_when(self.core.clock.now(), ZoneInfo(identity.tz))
        return Reply(f"Your time zone is now {identity.tz} (it is {now}).")

    async def community(self, actor: Actor, cmd: t.CommunityCommand) -> Reply:
        communities = self.core.communities
        if cmd.verb == "links":
            linked = await communities.linked(actor.community_id)
            if not linked:
                return Reply(
                    "This community is not linked with any other. Link one you run: /community link"
                )
            return Reply(
                "\n".join(f"{label(c)} — {c.id}" for c in linked), title="Linked communities"
            )
        if cmd.verb == "unlink":
            assert cmd.target is not None
            other = await communities.unlink(actor, cmd.target)
            return Reply(
                f"This community is no longer linked with {label(other)}. Spaces already "
                "announced there go on."
            )
        if cmd.target is None:
            made = await communities.link_code(actor)
            until = format_when(made.expires_at, await self.tz_of(actor))
            return Reply(
                f"Your link code is {made.code}. In the other community (Discord, Slack or "
                f"the shell), run /community link {made.code} before {until}; it works once."
            )
        other = await communities.confirm(actor, cmd.target)
        return Reply(
            f"Linked with {label(other)}. Announce a Space on both sides with "
            "/space create … also:" + other.platform.value,
            ephemeral=False,
        )

    async def help(self, actor: Actor, cmd: t.Help) -> Reply:
        return Reply(help_text(cmd.topic), title="Stagepass commands")
