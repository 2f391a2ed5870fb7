"""Billing's web pages: where Stripe sends people back to, and the TEST MODE checkout.

The TEST MODE checkout exists only without a Stripe key (`dev_checkout_router` is not
even mounted otherwise, and it checks again on every request). Its Pay button completes
the session locally and sends a `checkout.session.completed` event, signed with the
local secret, through the same `WebhookProcessor` that serves `/webhooks/stripe`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable

import stripe
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billing.accounts import CONNECT_REFRESH_PATH, CONNECT_RETURN_PATH
from billing.dev_stripe import DEV_CHECKOUT_PATH, DevStripe
from billing.errors import StripeNotFound, StripeRejected
from billing.gateway import CHECKOUT_CANCELLED_PATH, CHECKOUT_DONE_PATH
from billing.ledger import Ledger
from billing.webhooks import WebhookProcessor
from bot.money import format_minor
from bot.settings import Settings, secret_of
from bot.wording import TEST_MODE

TEST_BANNER = TEST_MODE.upper()  # "TEST MODE — NO REAL PAYMENT"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 34rem; margin: 2rem auto;
        padding: 0 1rem; line-height: 1.5; color: #1d1d1f; }}
 .test {{ background: #b00020; color: #fff; font-weight: 700; font-size: 1.3rem;
         padding: .8rem 1rem; border-radius: .4rem; text-align: center; }}
 table {{ width: 100%; border-collapse: collapse; margin: 1rem 0; }}
 td {{ padding: .3rem 0; border-bottom: 1px solid #ddd; }} td.n {{ text-align: right; }}
 button {{ font-size: 1.1rem; padding: .6rem 1.4rem; border-radius: .4rem; border: 0;
          background: #1d1d1f; color: #fff; cursor: pointer; }}
 .muted {{ color: #666; font-size: .9rem; }}
</style></head><body>
{body}
</body></html>"""


def page(title: str, body: str, *, status: int = 200, test_mode: bool = False) -> HTMLResponse:
    banner = f'<p class="test" id="test-mode">{TEST_BANNER}</p>\n' if test_mode else ""
    full_title = f"{TEST_BANNER} — {title}" if test_mode else title
    return HTMLResponse(
        _PAGE.format(title=html.escape(full_title), body=banner + body), status_code=status
    )


def pages_router() -> APIRouter:
    """Where Stripe Checkout and Connect onboarding send people back to."""
    router = APIRouter(tags=["billing"], include_in_schema=False)

    notices = {
        CHECKOUT_DONE_PATH: (
            "Payment received",
            "Payment received",
            "Thank you! Your ticket (or the thank-you for your tip) arrives in your direct "
            "messages within a minute. You can close this page.",
        ),
        CHECKOUT_CANCELLED_PATH: (
            "Payment cancelled",
            "Payment cancelled",
            "Nothing was charged. Your seats stay held until the time shown in chat: use "
            "the Pay button there again to finish.",
        ),
        CONNECT_RETURN_PATH: (
            "Stripe onboarding",
            "Thanks!",
            "Back in chat, run <code>/payouts status</code> to see whether Stripe has "
            "enabled payments and payouts for you.",
        ),
        CONNECT_REFRESH_PATH: (
            "Link expired",
            "This link has expired",
            "Onboarding links work once and for a few minutes. Run <code>/payouts "
            "connect</code> in chat for a fresh one.",
        ),
    }
    for path, (title, heading, text) in notices.items():
        router.add_api_route(path, _static_page(title, f"<h1>{heading}</h1><p>{text}</p>"))
    return router


def _static_page(title: str, body: str) -> Callable[[], Awaitable[HTMLResponse]]:
    """A GET endpoint that takes no input and always shows the same page."""

    async def show() -> HTMLResponse:
        return page(title, body)

    return show


def dev_checkout_router(
    dev: DevStripe, processor: WebhookProcessor, ledger: Ledger, secret: str, settings: Settings
) -> APIRouter:
    """The TEST MODE checkout page and its Pay button (no Stripe key only)."""
    router = APIRouter(tags=["billing"], include_in_schema=False, max_body_size=4 * 1024)

    def live() -> bool:
        return secret_of(settings.stripe_secret_key) is not None

    @router.get(DEV_CHECKOUT_PATH + "/{session_id}")
    async def show(session_id: str) -> Response:
        if live():
            return page("Not found", "<h1>Not found</h1>", status=404)
        try:
            session = await dev.session_data(session_id)
        except StripeNotFound:
            return page("Not found", "<h1>No such checkout</h1>", status=404, test_mode=True)
        currency = str(session["currency"])
        rows = ""
        for line in session.get("dev_lines") or []:
            quantity = int(line["quantity"])
            subtotal = format_minor(int(line["unit_amount"]) * quantity, currency)
            rows += (
                f"<tr><td>{html.escape(str(line['name']))} × {quantity}</td>"
                f'<td class="n">{subtotal}</td></tr>'
            )
        total = format_minor(int(session["amount_total"]), currency)
        checkout = await ledger.checkout(session_id)
        fee = checkout.fee_minor if checkout is not None else None
        fee_note = (
            f'<p class="muted">Platform fee included: {format_minor(int(fee), currency)}</p>'
            if fee
            else ""
        )
        if session["status"] == "open":
            action = (
                f'<form method="post"><button id="pay" type="submit">Pay {total} '
                "(test)</button></form>"
                '<p class="muted">This is the local test checkout: nothing is charged and no '
                "card is needed. It exists because this Stagepass has no Stripe key.</p>"
            )
        else:
            action = f'<p id="status">This checkout is {html.escape(str(session["status"]))}.</p>'
        return page(
            "Checkout",
            f"<h1>Checkout</h1><table>{rows}<tr><td><b>Total</b></td>"
            f'<td class="n"><b>{total}</b></td></tr></table>{fee_note}{action}',
            test_mode=True,
        )

    @router.post(DEV_CHECKOUT_PATH + "/{session_id}")
    async def pay(session_id: str) -> Response:
        if live():
            return page("Not found", "<h1>Not found</h1>", status=404)
        try:
            event = await dev.pay(session_id)
        except StripeNotFound:
            return page("Not found", "<h1>No such checkout</h1>", status=404, test_mode=True)
        except StripeRejected as exc:
            return page(
                "Checkout",
                f'<h1>Not paid</h1><p id="status">{html.escape(exc.message)}</p>',
                status=409,
                test_mode=True,
            )
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, secret)
        outcome = await processor.process(payload.encode(), header)
        if outcome.status >= 400:
            return page(
                "Checkout",
                "<h1>Paid, but not confirmed yet</h1><p>The test payment went through, but "
                f"Stagepass could not confirm it ({html.escape(outcome.result)}). It is "
                "retried automatically.</p>",
                status=502,
                test_mode=True,
            )
        return RedirectResponse(f"{DEV_CHECKOUT_PATH}/{session_id}/done", status_code=303)

    @router.get(DEV_CHECKOUT_PATH + "/{session_id}/done")
    async def done(session_id: str) -> Response:
        if live():
            return page("Not found", "<h1>Not found</h1>", status=404)
        return page(
            "Paid",
            '<h1 id="status">Paid (test)</h1><p>Your ticket (or the thank-you for your tip) is '
            "in your direct messages. No money moved.</p>",
            test_mode=True,
        )

    return router
