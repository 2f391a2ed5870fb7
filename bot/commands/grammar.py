"""The command grammar: usage table (also the help text) and the parser.

`parse(text, tz=..., now=..., default_currency=...)` returns a typed command or raises
`InvalidInput` with a message that says what to write instead — never anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches
from zoneinfo import ZoneInfo

from bot.actors import UserRef
from bot.commands import types as t
from bot.commands.syntax import Words, lex, mention, space_id
from bot.commands.times import parse_duration, parse_when
from bot.errors import InvalidInput
from bot.models import BridgeMode, Visibility
from bot.money import currency as lookup_currency
from bot.money import parse_amount
from bot.permissions import Action, who_may
from bot.services.promos import promo_code
from bot.services.spaces import SpaceChanges, SpaceDraft


@dataclass(frozen=True, slots=True)
class Usage:
    """One command: its usage line and summary (the short help), and for `/help COMMAND`
    who may use it, notes on its values and defaults, and an example."""

    path: str
    usage: str
    summary: str
    options: tuple[str, ...] = ()
    who: str = ""
    notes: tuple[str, ...] = ()
    example: str = ""
    action: Action | None = None
    """The permission the command needs: `Who:` is then read from `bot.permissions`."""

    def brief(self) -> str:
        """The usage line and the summary: one entry of a list of commands."""
        return f"{self.usage}\n    {self.summary}"

    def details(self) -> str:
        """The long help of this one command."""
        lines = [self.brief()]
        who = self.who or (f"{who_may(self.action)}." if self.action else "")
        if who:
            lines.append(f"Who: {who}")
        lines += [f"  {note}" for note in self.notes]
        if self.example:
            lines.append(f"Example: {self.example}")
        return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str], shown: str = "{}") -> str:
    """` Did you mean X?` for the choice closest to a mistyped `word`, or "" (difflib);
    `shown` formats the choice (`"/{}"`, `"{}:"`)."""
    close = get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {shown.format(close[0])}?" if close else ""


WHEN_FORMATS = (
    'starts: "tomorrow 18:00", "fri 18:00", "2030-05-01 18:00", "in 2 hours"; read in your '
    "zone (see /tz; set it with /tz set Europe/Berlin)."
)


_SPACE_FIELDS = (
    "title",
    "starts",
    "price",
    "currency",
    "tickets",
    "duration",
    "description",
    "limit",
    "visibility",
)

USAGES: tuple[Usage, ...] = (
    Usage(
        "space create",
        '/space create title:"…" starts:"fri 18:00" tickets:100 [price:5] '
        '[currency:usd] [duration:60] [limit:1] [description:"…"] [manual:yes] [also:slack]',
        "Announce a Space; times are read in your zone (/tz set).",
        (*_SPACE_FIELDS, "manual", "also"),
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
        (*_SPACE_FIELDS, "bridge", "replay_days"),
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
        "/space invite SPACE uses:10",
        "An invite good for `uses` tickets (free or paid); invite-only Spaces need one.",
        ("uses",),
        notes=("The people you invite get a ticket with /ticket redeem TOKEN",),
        example="/space invite 12 uses:10",
        action=Action.INVITE,
    ),
    Usage(
        "ticket redeem",
        "/ticket redeem TOKEN",
        "Get a ticket through an invite the host gave you.",
    ),
    Usage(
        "ticket buy",
        "/ticket buy SPACE [quantity:1] [code:EARLY]",
        "Get a ticket (code: a promo code).",
        ("quantity", "code"),
    ),
    Usage(
        "ticket waitlist",
        "/ticket waitlist SPACE [leave]",
        "Get in line for a sold-out Space (leave: get out of the line).",
        notes=(
            "A seat that comes back (unpaid, refunded, or a bigger Space) is held for the "
            "next in line, who gets a DM with the pay link; unpaid, it passes on.",
        ),
        example="/ticket waitlist 12",
    ),
    Usage("ticket show", "/ticket show [SPACE]", "Your tickets and their join links."),
    Usage(
        "ticket refund",
        "/ticket refund TICKET",
        "Refund your own ticket within the refund policy (hosts: any of their Space's).",
        who="the ticket's holder, and the host of its Space.",
        notes=("Refunds close some hours before the start (see the ticket's message).",),
    ),
    Usage(
        "tip",
        '/tip @host AMOUNT [currency:usd] [message:"…"] [public:yes] [space:SPACE]',
        "Tip a host.",
        ("currency", "message", "public", "space"),
    ),
    Usage("remind", "/remind on|off SPACE", "Be reminded before a Space starts."),
    Usage(
        "stage request",
        "/stage request [space:SPACE]",
        "Ask to speak.",
        ("space",),
        action=Action.REQUEST_TO_SPEAK,
    ),
    Usage(
        "stage hand",
        "/stage hand [up|down] [space:SPACE]",
        "Raise or lower your hand.",
        ("space",),
        action=Action.REQUEST_TO_SPEAK,
    ),
    Usage(
        "stage promote",
        "/stage promote @user [space:SPACE]",
        "Make a listener a speaker.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage invite",
        "/stage invite @user [space:SPACE]",
        "Make someone a speaker when they join (before or during the Space).",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage demote",
        "/stage demote @user [space:SPACE]",
        "Back to listener.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage mute",
        "/stage mute @user [space:SPACE]",
        "Mute a speaker.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage unmute",
        "/stage unmute @user [space:SPACE]",
        "Unmute a speaker.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage remove",
        "/stage remove @user [space:SPACE]",
        "Remove someone from the room.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage(
        "stage allow",
        "/stage allow @user [space:SPACE]",
        "Let someone removed from the stage back in.",
        ("space",),
        action=Action.RUN_STAGE,
    ),
    Usage("stage queue", "/stage queue [space:SPACE]", "Speakers and raised hands.", ("space",)),
    Usage(
        "slot add",
        '/slot add title:"…" starts:"…" [every:week] [days:mon,thu] [until:…] …',
        "Book a time slot, one-off or recurring.",
        (*_SPACE_FIELDS, "every", "days", "until", "count", "interval"),
    ),
    Usage("slot list", "/slot list", "Your booked slots."),
    Usage("slot remove", "/slot remove SLOT", "Remove future occurrences of a slot."),
    Usage("payouts connect", "/payouts connect", "Connect a Stripe account to get paid."),
    Usage("payouts status", "/payouts status", "Whether you can sell and get paid."),
    Usage("tz set", "/tz set Europe/Berlin", "Your time zone; `/tz` shows it."),
    Usage(
        "community link",
        "/community link [CODE]",
        "Link this community with another you run: without CODE you get a one-time code; "
        "enter it there with /community link CODE.",
        who="whoever may host Spaces in each community (STAGEPASS_HOST_RULES).",
        notes=(
            "The code works once, for 15 minutes. Linked, a Space made with also: is "
            "announced on both sides, with one set of seats.",
        ),
        example="/community link K7QD3MZP",
    ),
    Usage("community links", "/community links", "The communities linked with this one."),
    Usage(
        "community unlink",
        "/community unlink COMMUNITY",
        "Remove a link (name the community, or its platform). Spaces already announced "
        "there go on.",
        who="whoever may host Spaces here (STAGEPASS_HOST_RULES).",
    ),
    Usage("help", "/help [command]", "This help."),
)
_BY_PATH = {u.path: u for u in USAGES}
_GROUPS = sorted({u.path.split()[0] for u in USAGES})
GROUPS = frozenset(_GROUPS)
"""The first word of every command (space, ticket, stage, ...): adapters without a command
registry (Matrix) tell a command from talk by it."""


def help_text(topic: str = "") -> str:
    topic = " ".join(topic.lower().lstrip("/").split())
    chosen = [u for u in USAGES if not topic or u.path == topic or u.path.startswith(topic + " ")]
    if not chosen:
        hint = did_you_mean(topic, [*_BY_PATH, *_GROUPS], "/{}")
        raise InvalidInput(
            f"No command {topic!r}.{hint} Commands: " + ", ".join(f"/{g}" for g in _GROUPS)
        )
    if len(chosen) == 1 and chosen[0].path == topic:
        return chosen[0].details()
    return "\n".join(u.brief() for u in chosen)


class _Reader:
    """Reads one command's words, remembering which options were used."""

    def __init__(self, path: str, words: Words) -> None:
        self.path = path
        self.words = words
        self.usage = _BY_PATH.get(path)

    def fail(self, message: str) -> InvalidInput:
        hint = f" Usage: {self.usage.usage}" if self.usage else ""
        return InvalidInput(message + hint)

    def check_options(self) -> None:
        allowed = set(self.usage.options if self.usage else ())
        unknown = sorted(set(self.words.options) - allowed)
        if unknown:
            known = ", ".join(f"{o}:" for o in sorted(allowed)) or "none"
            hint = did_you_mean(unknown[0], allowed, "{}:")
            raise self.fail(
                f"Unknown option {unknown[0]}: for /{self.path}.{hint} (options: {known})."
            )

    def positional(self, index: int) -> str | None:
        pos = self.words.positional
        return pos[index] if index < len(pos) else None

    def max_positional(self, count: int) -> None:
        if len(self.words.positional) > count:
            extra = self.words.positional[count]
            raise self.fail(f"I don't know what {extra!r} means here; quote values with spaces.")

    def space(self, index: int, *, required: bool = True) -> int | None:
        word = self.positional(index) or self.words.options.get("space")
        if word is None:
            if required:
                raise self.fail("Name the Space by its number, e.g. 12 or #12.")
            return None
        found = space_id(word)
        if found is None:
            raise self.fail(f"{word!r} is not a Space number.")
        return found

    def user(self, index: int) -> UserRef:
        word = self.positional(index)
        ref = mention(word) if word else None
        if ref is None:
            raise self.fail("Mention someone, e.g. @alice.")
        return ref

    def option(self, name: str) -> str | None:
        return self.words.options.get(name)

    def integer(self, name: str, *, minimum: int = 1) -> int | None:
        raw = self.option(name)
        if raw is None:
            return None
        text = raw.replace(",", "").replace("_", "")
        if not text.lstrip("-").isdigit() or len(text) > 12:
            raise InvalidInput(f"{name}: must be a whole number, not {raw!r}.", field=name)
        value = int(text)
        if value < minimum:
            raise InvalidInput(f"{name}: must be at least {minimum}.", field=name)
        return value

    def flag(self, name: str) -> bool | None:
        raw = self.option(name)
        if raw is None:
            return None
        lowered = raw.lower()
        if lowered in {"yes", "y", "true", "on", "1", ""}:
            return True
        if lowered in {"no", "n", "false", "off", "0"}:
            return False
        raise InvalidInput(f"{name}: takes yes or no, not {raw!r}.", field=name)


_Parser = Callable[["_Reader", ZoneInfo, datetime, str], t.Command]


def _space_values(
    r: _Reader, tz: ZoneInfo, now: datetime, default_currency: str, *, edit: bool = False
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


def _create(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
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


def _edit(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
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
) -> Callable[[_Reader, ZoneInfo, datetime, str], t.Command]:
    def parse(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        space = r.space(0)
        assert space is not None
        r.max_positional(1)
        return build(space)

    return parse


def _cancel(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.CancelSpace(
        space, (r.option("reason") or "").strip()[:500], confirm=bool(r.flag("confirm"))
    )


def _start(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.StartSpace(space, confirm=bool(r.flag("confirm")))


def _space_tickets(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.ListSpaceTickets(space, r.integer("page") or 1)


def _space_replays(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    return t.SpaceReplays(space, r.integer("delete"))


def _cohost(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    verb = (r.positional(0) or "").lower()
    if verb not in {"add", "remove"}:
        raise r.fail("Say add or remove.")
    space = r.space(1)
    assert space is not None
    user = r.user(2)
    r.max_positional(3)
    return t.SetCohost(space, user, verb == "add")


def _buy(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    code = r.option("code")
    return t.BuyTicket(space, r.integer("quantity") or 1, promo_code(code) if code else None)


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


def _promo(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
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


def _invite(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    r.max_positional(1)
    uses = r.integer("uses")
    if uses is None:
        raise r.fail("uses: is missing: how many tickets the link may get, e.g. uses:10.")
    return t.MakeInvite(space, uses)


def invite_token(text: str) -> str:
    """An invite's token as pasted -> the token, or `InvalidInput`."""
    token = text.strip()
    if not token or len(token) > 1000 or "." not in token:
        raise InvalidInput("Paste the invite's token: /ticket redeem TOKEN.", field="token")
    return token


def _redeem(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    token = r.positional(0)
    r.max_positional(1)
    return t.RedeemInvite(invite_token(token or ""))


def _waitlist(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    space = r.space(0)
    assert space is not None
    word = (r.positional(1) or "").lower()
    if word not in {"", "leave"}:
        raise r.fail(f"I don't know what {r.positional(1)!r} means here; say leave or nothing.")
    r.max_positional(2)
    return t.JoinWaitlist(space, leave=word == "leave")


def _show_tickets(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    r.max_positional(1)
    return t.ShowTickets(r.space(0, required=False))


def _refund(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    ticket = r.positional(0)
    if not ticket or not ticket.isalnum() or len(ticket) > 40:
        raise r.fail("Name the ticket by its id.")
    r.max_positional(1)
    return t.RefundTicket(ticket.lower())


def _tip(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    user = r.user(0)
    amount = r.positional(1)
    if amount is None:
        raise r.fail("Say how much, e.g. /tip @host 5.")
    r.max_positional(2)
    code = lookup_currency(r.option("currency") or cur).code
    parse_amount(amount, code)  # validated now, converted by billing
    return t.Tip(
        user,
        amount,
        code,
        (r.option("message") or "")[:300],
        r.flag("public") is not False,
        r.space(99, required=False),
    )


def _remind(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    verb = (r.positional(0) or "").lower()
    if verb not in {"on", "off"}:
        raise r.fail("Say on or off.")
    space = r.space(1)
    assert space is not None
    r.max_positional(2)
    return t.SetReminder(space, verb == "on")


def _stage(verb: str) -> Callable[[_Reader, ZoneInfo, datetime, str], t.Command]:
    def parse(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        space = r.space(99, required=False)
        if verb in {"request", "queue"}:
            r.max_positional(0)
            return t.StageCommand(verb, space)
        if verb == "hand":
            word = (r.positional(0) or "up").lower()
            if word not in {"up", "down"}:
                raise r.fail("Say up or down.")
            r.max_positional(1)
            return t.StageCommand("hand", space, up=word == "up")
        user = r.user(0)
        r.max_positional(1)
        return t.StageCommand(verb, space, user)

    return parse


def _slot(verb: str) -> Callable[[_Reader, ZoneInfo, datetime, str], t.Command]:
    def parse(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        r.max_positional(1 if verb == "remove" else 0)
        return t.SlotCommand(verb, tuple(sorted(r.words.options.items())), r.positional(0))

    return parse


def _payouts(verb: str) -> Callable[[_Reader, ZoneInfo, datetime, str], t.Command]:
    def parse(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        r.max_positional(0)
        return t.PayoutsCommand(verb)

    return parse


def _community(verb: str) -> _Parser:
    def parse(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
        if verb == "links":
            r.max_positional(0)
            return t.CommunityCommand(verb)
        target = r.positional(0)
        if verb == "unlink" and not target:
            raise r.fail("Name the community to unlink (see /community links).")
        r.max_positional(1)
        return t.CommunityCommand(verb, target)

    return parse


def _tz(r: _Reader, tz: ZoneInfo, now: datetime, cur: str) -> t.Command:
    zone = r.positional(0)
    if zone is None:
        raise r.fail("Name a zone, e.g. /tz set Europe/Berlin.")
    r.max_positional(1)
    return t.SetTimezone(zone)


_PARSERS: dict[str, _Parser] = {
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
    "ticket buy": _buy,
    "ticket waitlist": _waitlist,
    "ticket redeem": _redeem,
    "space invite": _invite,
    "ticket show": _show_tickets,
    "ticket refund": _refund,
    "tip": _tip,
    "remind": _remind,
    **{
        f"stage {v}": _stage(v)
        for v in (
            "request",
            "hand",
            "promote",
            "invite",
            "demote",
            "mute",
            "unmute",
            "remove",
            "allow",
            "queue",
        )
    },
    **{f"slot {v}": _slot(v) for v in ("add", "list", "remove")},
    **{f"payouts {v}": _payouts(v) for v in ("connect", "status")},
    **{f"community {v}": _community(v) for v in ("link", "links", "unlink")},
    "tz set": _tz,
    "tz": lambda r, *_: (r.max_positional(0), t.SetTimezone(None))[1],
    "help": lambda r, *_: t.Help(" ".join(r.words.positional)),
}


def parse(text: str, *, tz: ZoneInfo, now: datetime, default_currency: str = "usd") -> t.Command:
    """Text of one command -> typed command, or `InvalidInput` saying what to write."""
    if len(text) > 4000:
        raise InvalidInput("That command is too long.")
    line = text.strip()
    if not line.startswith("/"):
        raise InvalidInput("Commands start with /, e.g. /space list. Try /help.")
    words = lex(line[1:])
    head = [w.lower() for w in words.positional[:2]]
    for size in (2, 1):
        path = " ".join(head[:size])
        if len(head) >= size and path in _PARSERS:
            del words.positional[:size]
            reader = _Reader(path, words)
            if path != "tz":
                reader.check_options()
            return _PARSERS[path](reader, tz, now, default_currency)
    if head and head[0] in _GROUPS:
        verbs = sorted(p.split()[1] for p in _PARSERS if p.startswith(head[0] + " "))
        hint = did_you_mean(head[1], verbs, f"/{head[0]} {{}}") if len(head) > 1 else ""
        raise InvalidInput(
            f"/{head[0]} needs one of: {', '.join(verbs)}.{hint} Try /help {head[0]}."
        )
    name = head[0] if head else ""
    hint = did_you_mean(name, _GROUPS, "/{}") if name else ""
    raise InvalidInput(
        f"There is no /{name} command.{hint} Commands: " + ", ".join(f"/{g}" for g in _GROUPS) + "."
    )
