"""Checkout details that need no Stripe: the session's expiry and the buyer's email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing.gateway import session_expiry, usable_email

NOW = datetime(2030, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
START = 1_893_499_201  # NOW rounded up to a whole second


def test_session_expires_with_its_hold() -> None:
    hold = NOW + timedelta(minutes=45)
    assert session_expiry(hold, NOW) == int(hold.timestamp()) + 1  # rounded up, not down
    assert session_expiry(NOW + timedelta(hours=3), NOW) == START + 3 * 3600


def test_session_expiry_stays_in_stripes_window() -> None:
    # a 30-minute hold: Stripe's minimum plus a minute for the trip to Stripe
    assert session_expiry(NOW + timedelta(minutes=30), NOW) == START + 31 * 60
    # a 24-hour hold: just under Stripe's maximum
    assert session_expiry(NOW + timedelta(hours=24), NOW) == START + 24 * 3600 - 60


def test_only_plausible_emails_reach_stripe() -> None:
    assert usable_email("bob@example.com") == "bob@example.com"
    for bad in (None, "", "bob", "bob@", "bob@example", "a b@example.com"):
        assert usable_email(bad) is None
