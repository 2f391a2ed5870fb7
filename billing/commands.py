"""Billing's chat commands: `/payouts connect|status`, `/tip`, `/ticket refund` (with the
refund policy) and `/space cancel` (with refund progress for the host). `register`
hands them to the core's dispatcher in place of its "not configured" answers."""

from __future__ import annotations

import structlog

from billing.accounts import Accounts, describe_requirements
from billing.errors import BillingError, StripeUnavailable
from billing.tips import Tips
from bot.actors import Actor
from bot.commands import types as t
from bot.commands.handlers import Dispatcher
from bot.core import Core
from bot.money import format_minor
from bot.replies import Button, Reply
from bot.wording import TEST_MODE

log = structlog.get_logger(__name__)

TEST_MODE_PAYOUTS = (
    "TEST MODE: no Stripe key is set, so there is no account to connect. Paid Spaces use "
    "the local test checkout and no money moves; the operator sets STRIPE_SECRET_KEY for "
    "real payments."
)


class BillingCommands:
    def __init__(self, core: Core, accounts: Accounts, tips: Tips, *, test_mode: bool) -> None:
        self.core = core
        self.accounts = accounts
        self.tips = tips
        self.test_mode = test_mode

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(t.PayoutsCommand, self.payouts)
        dispatcher.register(t.Tip, self.tip)
        dispatcher.register(t.RefundTicket, self.refund_ticket)

    async def payouts(self, actor: Actor, cmd: t.PayoutsCommand) -> Reply:
        if self.test_mode:
            return Reply(TEST_MODE_PAYOUTS)
        host = await self.core.identities.ensure(actor)
        if cmd.verb == "connect":
            url = await self.accounts.connect(host)
            return Reply(
                "Set up payouts with Stripe: it takes a few minutes and asks for your bank "
                "details. Afterwards, check /payouts status.",
                buttons=(Button("Set up payouts", url=url),),
            )
        account = (await self.accounts.status(host)).account
        if account is None:
            return Reply(
                "You have not connected a Stripe account yet. Run /payouts connect to get "
                "paid for tickets and tips."
            )
        lines = [
            f"Payments: {'enabled' if account.charges_enabled else 'not enabled yet'}",
            f"Payouts to your bank: {'enabled' if account.payouts_enabled else 'not enabled yet'}",
        ]
        if account.currently_due:
            lines.append(
                f"Stripe still needs: {describe_requirements(account.currently_due)}. "
                "Finish with /payouts connect."
            )
        elif account.charges_enabled:
            lines.append("You can sell paid tickets.")
        return Reply("\n".join(lines), title="Payouts")

    async def tip(self, actor: Actor, cmd: t.Tip) -> Reply:
        tip, checkout = await self.tips.start(actor, cmd)
        host = await self.core.identities.get(tip.host_id)
        who = cmd.user.display_name or cmd.user.user_id if cmd.user else host.display_name
        mode = f" ({TEST_MODE})" if checkout.test_mode else ""
        how = "thanked in the channel" if tip.public else "told privately"
        return Reply(
            f"Tip {format_minor(tip.amount_minor, tip.currency)} to {who}: pay to send it"
            f"{mode}. They'll be {how} once it's paid.",
            buttons=(Button("Pay tip", url=checkout.url),),
        )

    async def refund_ticket(self, actor: Actor, cmd: t.RefundTicket) -> Reply:
        """The holder refunds their own ticket, or the host one of their Space's: in full
        until the cutoff, not after (the core's `refund_one` decides)."""
        core = self.core
        try:
            ticket = await core.tickets.refund_one(actor, cmd.ticket_id)
        except StripeUnavailable:
            return Reply(
                "Stripe can't be reached right now, so the refund is not done yet; the "
                "ticket stays valid and the refund is retried automatically.",
                error=True,
            )
        except BillingError as exc:
            log.error("refund failed", ticket_id=cmd.ticket_id, error=str(exc))
            return Reply(
                "Stripe refused this refund (the operator has the details); the ticket "
                "stays valid.",
                error=True,
            )
        if ticket.price_minor:
            amount = format_minor(ticket.price_minor, ticket.currency)
            me = await core.identities.ensure(actor)
            to = "you" if me.id == ticket.holder_id else "the buyer"
            return Reply(f"Ticket {ticket.id} is refunded: {amount} goes back to {to}.")
        return Reply(f"Ticket {ticket.id} is {ticket.status.value}.")
