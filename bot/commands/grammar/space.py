"""/space: announce, change, run and sell a Space."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.commands import types as t
from bot.commands.grammar.reader import Parser, Reader
from bot.commands.grammar.usage import SPACE_FIELDS, WHEN_FORMATS, Usage
from bot.commands.times import parse_duration, parse_when
from bot.errors import InvalidInput
from bot.models import BridgeMode, Visibility
from bot.money import currency as lookup_currency
from bot.money import parse_amount
from bot.permissions import Action, who_may
from bot.services.promos import promo_code
from bot.services.spaces import SpaceChanges, SpaceDraft

USAGES: tuple[Usage, ...] = (
    Usage(
        "space create",
        '/space create title:"…" starts:"fri 18:00" tickets:100 [price:5] '
        '[currency:usd] [duration:60] [limit:1] [description:"…"] [manual:yes] [also:slack]',
        "Announce a Space; times are read in your zone (/tz set).",
        (*SPACE_FIELDS, "manual", "also"),
        who="whoever this community's host rules allow (STAGEPASS_HOST_RULES; by default anyone).",
        notes=(
            WHEN_FORMATS,
            "price: free unless given, in currency: (the community's default, usd unless "
            "changed), e.g. 5 or 4.50.",
            "tickets: how many can join; limit: tickets per buyer (default 1).",
            "visibility:invite: not listed and no public page; tickets only through "
            "/space invite links (default public).",
            "duration: minutes or 1h30m (default 60); manual:yes: you start it with "
            "/space start instead of at the start time.",
            "also: announce it in linked communities too (/community links): a platform "
            "(slack, discord, shell), a community's name, or all; several with commas. One "
            "set of seats, one stage, one room.",
        ),
        example='/space create title:"Ask me anything" starts:"fri 18:00" tickets:100 '
        "price:5 duration:90",
    ),
    Usage("space list", "/space list", "Upcoming and live Spaces here."),
    Usage("space info", "/space info SPACE", "Details of a Space."),
    Usage(
        "space edit",
        "/space edit SPACE [title:…] [starts:…] [tickets:…] [bridge:off|listen|speak|default] "
        "[replay_days:7] …",
        "Change a Space you host; bridge: whether its Discord channel joins the room.",
        (*SPACE_FIELDS, "bridge", "replay_days"),
        notes=(
            WHEN_FORMATS,
            "replay_days: how many days after the end ticket holders may replay its "
            "recordings (0: none); works after the end too.",
        ),
        action=Action.EDIT,
    ),
    Usage(
        "space cancel",
        '/space cancel SPACE [reason:"…"] [confirm:yes]',
        "Cancel a Space; every ticket is refunded (a live one: add confirm:yes).",
        ("reason", "confirm"),
        action=Action.CANCEL,
    ),
    Usage(
        "space start",
        "/space start SPACE [confirm:yes]",
        "Go live now (more than 15 minutes early: add confirm:yes).",
        ("confirm",),
        action=Action.START,
    ),
    Usage("space end", "/space end SPACE", "End a live Space.", action=Action.END),
    Usage(
        "space cohost",
        "/space cohost add|remove SPACE @user",
        "Manage co-hosts (at most 2).",
        action=Action.MANAGE_COHOSTS,
    ),
    Usage(
        "space manage",
        "/space manage SPACE",
        "A private link (an hour) to the Space's desk: holders, sales, refunds.",
        action=Action.SEE_SALES,
    ),
    Usage(
        "space tickets",
        "/space tickets SPACE [page:1]",
        "The Space's holders and sales in chat (hosts, co-hosts, moderators).",
        ("page",),
        action=Action.SEE_SALES,
    ),
    Usage(
        "space replays",
        "/space replays SPACE [delete:N]",
        "The Space's recordings and until when holders may replay them; delete:N deletes one.",
        ("delete",),
        notes=("The replay window: /space edit SPACE replay_days:N (days after the end).",),
        action=Action.RECORD,
    ),
    Usage(
        "space promo",
        '/space promo SPACE [code:EARLY percent:20|amount:5 uses:50 until:"fri 18:00"] [off|on]',
        "Promo codes: make one, list them (no code:), or turn one off or on.",
        ("code", "percent", "amount", "uses", "until"),
        notes=(
            "percent: or amount: (in the Space's currency) off each ticket; uses: how many "
            "tickets it may discount; until: when it stops (your zone).",
            "Codes: letters, digits, - and _, at most 32, any case. Buyers: "
            "/ticket buy SPACE code:EARLY",
        ),
        example='/space promo 12 code:EARLY percent:20 uses:50 until:"fri 18:00"',
        action=Action.MANAGE_PROMOS,
    ),
    Usage(
        "space invite",
        "/space invite SPACE uses:10 | revoke:ID",
        "An invite good for `uses` tickets (free or paid); invite-only Spaces need one. "
        "revoke: withdraws one.",
        ("uses", "revoke"),
        notes=(
            "The people you invite get a ticket with /ticket redeem TOKEN",
            "revoke:ID: the id /space invites shows; tickets already got stay, the link "
            f"gets no more. Who may withdraw one: {who_may(Action.WITHDRAW_INVITES)}.",
        ),
        example="/space invite 12 uses:10",
        action=Action.INVITE,
    ),
    Usage(
        "space invites",
        "/space invites SPACE",
        "The Space's invite links: id, tickets taken, expiry, withdrawn or not.",
        action=Action.WITHDRAW_INVITES,
    ),
)


def _space_values(
    r: Reader, tz: ZoneInfo, now: datetime, default_currency: str, *, edit: bool = False
) -> dict[str, object]:
    """The Space fields given as options. For an edit the price stays as typed: the
    service reads it in the Space's own currency unless currency: is given too."""
    values: dict[str, object] = {}
    if (title := r.option("title")) is not None:
        values["title"] = title
    if (starts := r.option("starts")) is not None:
        values["starts_at"] = parse_when(starts, tz, now)
    code = r.option("currency")
    if code is not None:
        values["currency"] = lookup_currency(code).code
    if (price := r.option("price")) is not None and edit:
        values["price"] = price
    elif price is not None:
        values["price_minor"] = parse_amount(price, str(values.get("currency", default_currency)))
        values.setdefault("currency", lookup_currency(default_currency).code)
    if (tickets := r.integer("tickets", minimum=0)) is not None:
        values["capacity"] = tickets
    if (duration := r.option("duration")) is not None:
        values["duration_minutes"] = parse_duration(duration)
    if (desc := r.option("description")) is not None:
        values["description"] = desc
    if (limit := r.integer("limit")) is not None:
        values["per_buyer_limit"] = limit
    if (seen := r.option("visibility")) is not None:
        values["visibility"] = visibility(seen)
    return values


def visibility(word: str) -> Visibility:
    """`public` or `invite` (not listed, no public page: tickets through invite links)."""
    try:
        return Visibility(word.strip().lower())
    except ValueError:
        raise InvalidInput("visibility: is public or invite.", field="visibility") from None


def _create(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    r.max_positional(0)
    values = _space_values(r, tz, now, cur)
    for name, key in (("title", "title"), ("starts", "starts_at"), ("tickets", "capacity")):
        if key not in values:
            raise r.fail(f"{name}: is missing.")
    values.setdefault("currency", lookup_currency(cur).code)
    also = (r.option("also") or "").strip()
    return t.CreateSpace(
        SpaceDraft(manual_start=bool(r.flag("manual")), also=(also,) if also else (), **values)  # type: ignore[arg-type]  # each key parsed above with its field's type
    )


def bridge_mode(word: str) -> BridgeMode:
    """`bridge:` of /space edit: off, listen, speak, or default (DISCORD_VOICE_BRIDGE)."""
    try:
        return BridgeMode(word.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in BridgeMode)
        raise InvalidInput(f"bridge: takes {choices}, not {word!r}.", field="bridge") from None


def _edit(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    values = _space_values(r, tz, now, cur, edit=True)
    if (bridge := r.option("bridge")) is not None:
        values["voice_bridge"] = bridge_mode(bridge)
    if (days := r.integer("replay_days", minimum=0)) is not None:
        values["replay_days"] = days
    if not values:
        raise r.fail("Say what to change.")
    return t.EditSpace(space, SpaceChanges(**values))  # type: ignore[arg-type]  # each key parsed above with its field's type


def _space_only(
    build: Callable[[int], t.Command],
) -> Parser:
    def parse(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        space = r.space(0)
        assert space is not None
        r.max_positional(1)
        return build(space)

    return parse


def _cancel(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.CancelSpace(
        space, (r.option("reason") or "").strip()[:500], confirm=bool(r.flag("confirm"))
    )


def _start(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.StartSpace(space, confirm=bool(r.flag("confirm")))


def _space_tickets(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.ListSpaceTickets(space, r.integer("page") or 1)


def _space_replays(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.SpaceReplays(space, r.integer("delete"))


def _cohost(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    verb = (r.positional(0) or "").lower()
    if verb not in {"add", "remove"}:
        raise r.fail("Say add or remove.")
    space = r.space(1)
    assert space is not None
    user = r.user(2)
    r.max_positional(3)
    return t.SetCohost(space, user, verb == "add")


def promo_command(
    space: int,
    *,
    code: str | None,
    switch: str = "",
    percent: int | None = None,
    amount: str | None = None,
    uses: int | None = None,
    until: str | None = None,
    tz: ZoneInfo,
    now: datetime,
) -> t.PromoCommand:
    """`/space promo`'s options -> the command (the text grammar and Discord's options
    both come here): no code lists, off/on switches, anything else makes a code."""
    terms = percent is not None or amount is not None or uses is not None or until is not None
    if code is None:
        if terms or switch:
            raise InvalidInput("Name the code, e.g. code:EARLY.", field="code")
        return t.PromoCommand(space)
    code = promo_code(code)
    if switch:
        if terms:
            raise InvalidInput(f"Turning {code} {switch} takes no other options.", field="code")
        return t.PromoCommand(space, code, active=switch == "on")
    if uses is None:
        raise InvalidInput(
            "uses: is missing: how many tickets the code may discount.", field="uses"
        )
    return t.PromoCommand(
        space,
        code,
        percent=percent,
        amount=amount,
        uses=uses,
        until=parse_when(until, tz, now) if until is not None else None,
    )


def _promo(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    switch = (r.positional(1) or "").lower()
    if switch not in {"", "off", "on"}:
        raise r.fail(f"I don't know what {r.positional(1)!r} means here; say off or on.")
    r.max_positional(2)
    return promo_command(
        space,
        code=r.option("code"),
        switch=switch,
        percent=r.integer("percent"),
        amount=r.option("amount"),
        uses=r.integer("uses"),
        until=r.option("until"),
        tz=tz,
        now=now,
    )


def invite_command(space: int, *, uses: int | None, revoke: str | None) -> t.Command:
    """`/space invite`'s options -> the command (the text grammar and Discord's options
    both come here): uses: makes a link, revoke: withdraws one."""
    if revoke is not None:
        if uses is not None:
            raise InvalidInput("Give uses: to make an invite or revoke: to withdraw one, not both.")
        return t.RevokeInvite(space, revoke.strip())
    if uses is None:
        raise InvalidInput(
            "uses: is missing: how many tickets the link may get, e.g. uses:10.", field="uses"
        )
    return t.MakeInvite(space, uses)


def _invite(r: Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return invite_command(space, uses=r.integer("uses"), revoke=r.option("revoke"))


PARSERS: dict[str, Parser] = {
    "space create": _create,
    "space list": lambda r, *_: (r.max_positional(0), t.ListSpaces())[1],
    "space info": _space_only(t.ShowSpace),
    "space edit": _edit,
    "space cancel": _cancel,
    "space start": _start,
    "space end": _space_only(t.EndSpace),
    "space manage": _space_only(t.ManageSpace),
    "space tickets": _space_tickets,
    "space replays": _space_replays,
    "space cohost": _cohost,
    "space promo": _promo,
    "space invite": _invite,
    "space invites": _space_only(t.ListInvites),
}
