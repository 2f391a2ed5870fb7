"""`/slot add|list|remove`: read the options, call `SlotService`, word the reply.

The Space fields of `/slot add` (title, starts, price, tickets, ...) are read by the
core's own grammar, so a slot accepts exactly what `/space create` accepts; the
recurrence options (every, days, until, count, interval) are read here.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actors import Actor
from bot.commands import types as t
from bot.commands.grammar import parse
from bot.commands.grammar.account import SLOT_RULE_FIELDS
from bot.commands.grammar.usage import SPACE_FIELDS
from bot.commands.handlers import Dispatcher
from bot.commands.times import format_when, parse_when
from bot.errors import InvalidInput
from bot.models import Visibility, row_id
from bot.replies import Reply
from bot.services.spaces import SpaceDraft
from scheduler.models import SlotSeries
from scheduler.recurrence import Recurrence, parse_weekdays
from scheduler.series import recurrence_of
from scheduler.slots import SlotService

_EVERY = re.compile(r"^\s*(?:(\d+)\s*)?(?:w|wk|wks|week|weeks|weekly)\s*$", re.I)
MAX_COUNT = 520
MAX_INTERVAL = 52


def read_slot(
    options: dict[str, str], tz: ZoneInfo, now: datetime, default_currency: str
) -> tuple[SpaceDraft, Recurrence]:
    """The options of `/slot add` -> the Spaces' draft and the recurrence rule."""
    line = "/space create " + " ".join(
        f'{name}:"{value}"' for name, value in options.items() if name in SPACE_FIELDS
    )
    command = parse(line, tz=tz, now=now, default_currency=default_currency)
    assert isinstance(command, t.CreateSpace)
    draft = command.draft
    local = draft.starts_at.astimezone(tz)
    at = local.time().replace(second=0, microsecond=0, tzinfo=None)
    if not any(name in options for name in SLOT_RULE_FIELDS):
        return draft, Recurrence.once(draft.starts_at, tz)
    interval = _interval(options)
    days: tuple[int, ...] = (local.weekday(),)
    if "days" in options:
        try:
            days = parse_weekdays(options["days"])
        except ValueError as exc:
            raise InvalidInput(
                f"days: {exc} is not a weekday; write days:mon,thu (or weekdays, weekends).",
                field="days",
            ) from None
    until = count = None
    if "until" in options and "count" in options:
        raise InvalidInput("Give until: or count:, not both.", field="until")
    if "until" in options:
        until = parse_when(options["until"], tz, now).astimezone(tz).date()
        if until < local.date():
            raise InvalidInput("until: is before the first start.", field="until")
    if "count" in options:
        count = _whole(options["count"], "count", 1, MAX_COUNT)
    rule = Recurrence(tz, local.date(), at, days, interval, until, count)
    return draft, rule


def _interval(options: dict[str, str]) -> int:
    every = options.get("every")
    interval = None
    if every is not None:
        match = _EVERY.match(every)
        if match is None:
            raise InvalidInput(
                "Slots repeat weekly: every:week, or every:2weeks; pick the days with "
                "days:mon,thu.",
                field="every",
            )
        interval = int(match[1] or 1)
    if "interval" in options:
        given = _whole(options["interval"], "interval", 1, MAX_INTERVAL)
        if interval is not None and given != interval:
            raise InvalidInput("every: and interval: disagree; give one of them.", field="every")
        interval = given
    interval = interval or 1
    if not 1 <= interval <= MAX_INTERVAL:
        raise InvalidInput(f"Repeat at most every {MAX_INTERVAL} weeks.", field="every")
    return interval


def _whole(raw: str, name: str, low: int, high: int) -> int:
    text = raw.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(f"{name}: must be a whole number from {low} to {high}.", field=name)
    return int(text)


def _unlisted(series: SlotSeries) -> str:
    """What a slot's description adds when its Spaces are invite-only."""
    return ", invite-only" if series.visibility == Visibility.INVITE else ""


def slot_id(word: str | None) -> int:
    raw = (word or "").strip().lstrip("#").lower().removeprefix("s")
    found = row_id(raw)
    if found is None:
        raise InvalidInput("Name the slot by its number, e.g. /slot remove S3 (see /slot list).")
    return found


class SlotCommands:
    def __init__(self, slots: SlotService, dispatcher: Dispatcher) -> None:
        self.slots = slots
        self.core = slots.core
        self.dispatcher = dispatcher

    async def handle(self, actor: Actor, command: t.SlotCommand) -> Reply:
        match command.verb:
            case "add":
                return await self.add(actor, dict(command.options))
            case "list":
                return await self.list(actor)
            case "remove":
                return await self.remove(actor, slot_id(command.target))
        raise InvalidInput("/slot needs one of: add, list, remove.")

    async def add(self, actor: Actor, options: dict[str, str]) -> Reply:
        tz = await self.dispatcher.tz_of(actor)
        now = self.core.clock.now()
        draft, rule = read_slot(options, tz, now, self.core.settings.default_currency)
        booking = await self.slots.book(actor, draft, rule)
        series, result = booking.series, booking.result
        lines = [f"Slot S{series.id} booked: {series.title}, {rule.describe()}{_unlisted(series)}."]
        if result.created:
            made = ", ".join(f"#{s.id} {format_when(s.starts_at, tz)}" for s in result.created[:5])
            more = f" and {len(result.created) - 5} more" if len(result.created) > 5 else ""
            lines.append(f"Spaces: {made}{more}.")
        for start, why in result.skipped:
            lines.append(f"Skipped {format_when(start, tz)}: {why}")
        if not rule.is_once:
            days = (self.slots.window_end(now) - now).days
            lines.append(f"Later Spaces are created {days} days ahead of their start.")
        if series.visibility == Visibility.INVITE:
            lines.append("Its Spaces are not listed: share each with /space invite ID uses:N.")
        return Reply("\n".join(lines), ephemeral=False)

    async def list(self, actor: Actor) -> Reply:
        me = await self.core.identities.ensure(actor)
        assert me.id is not None
        tz = await self.dispatcher.tz_of(actor)
        now = self.core.clock.now()
        mine = await self.slots.of_host(me.id)
        if not mine:
            return Reply('You have no slots. Book one with /slot add title:"…" starts:"…" …')
        lines = []
        for series in mine:
            rule = recurrence_of(series)
            state = " (finished)" if series.status.value == "finished" else ""
            lines.append(
                f"S{series.id} {series.title} — {rule.describe()}{_unlisted(series)}{state}"
            )
            upcoming = await self.slots.upcoming(series.id or 0, now)
            for space in upcoming:
                lines.append(f"    #{space.id} {format_when(space.starts_at, tz)}")
            following = rule.next_after(series.materialised_until or now)
            if following is not None and series.status.value == "active":
                lines.append(f"    next to be created: {format_when(following, tz)}")
        return Reply("\n".join(lines), title="Your slots")

    async def remove(self, actor: Actor, series_id: int) -> Reply:
        removal = await self.slots.remove(actor, series_id)
        text = f"Slot S{series_id} is removed."
        if removal.cancelled:
            ids = ", ".join(f"#{i}" for i in removal.cancelled)
            text += (
                f" Cancelled {len(removal.cancelled)} upcoming Space(s) ({ids}); "
                f"{removal.refunded} ticket(s) refunded or voided."
            )
        if removal.failed:
            text += f" {removal.failed} refund(s) failed and will be retried."
        return Reply(text, ephemeral=False)
