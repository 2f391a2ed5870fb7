"""What the scheduler says to people: reminders, start prompts and slot notices.

The wording lives here once; adapters render the `DirectMessage`s it becomes. Every time
is shown in the reader's zone with its abbreviation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands.times import format_delta, format_when
from bot.models import Space, SpaceStatus


def _minutes(delta: timedelta) -> str:
    # reminders are sent on the minute: round to it, so 29m59s reads "30m"
    rounded = timedelta(minutes=round(delta.total_seconds() / 60))
    return format_delta(rounded)


def listener_reminder(
    space: Space, tz: ZoneInfo, now: datetime, *, has_ticket: bool, offset: int
) -> str:
    name = f"{space.title} (#{space.id})"
    if space.status == SpaceStatus.LIVE:
        text = f"{name} is live now."
    elif offset == 0 or space.starts_at <= now:
        text = f"{name} starts now."
    else:
        text = (
            f"Reminder: {name} starts in {_minutes(space.starts_at - now)} — "
            f"{format_when(space.starts_at, tz)}."
        )
    if not has_ticket and space.status.is_open_for_sale:
        text += f" Get a ticket with /ticket buy {space.id}."
    return text


def host_reminder(
    space: Space, tz: ZoneInfo, now: datetime, *, offset: int, cancel_at: datetime
) -> str:
    name = f"Space {space.title} (#{space.id})"
    if space.status == SpaceStatus.LIVE:
        return f"Your {name} is live now."
    at_start = offset == 0 or space.starts_at <= now
    if space.manual_start and at_start:
        return (
            f"It's time to start {name}: /space start {space.id}. If it isn't started by "
            f"{format_when(cancel_at, tz)} it is cancelled and every ticket refunded."
        )
    if at_start:
        return f"Your {name} starts now."
    how = (
        f"Start it with /space start {space.id} when you're ready."
        if space.manual_start
        else "It goes live by itself at the start time."
    )
    return (
        f"Your {name} starts in {_minutes(space.starts_at - now)} — "
        f"{format_when(space.starts_at, tz)}. {how}"
    )


def abandoned_reason(hours: int) -> str:
    return f"The host did not start it within {hours} hour{'s' if hours != 1 else ''}."


def occurrence_skipped(title: str, starts_at: datetime, tz: ZoneInfo, why: str) -> str:
    return (
        f"Your recurring slot {title} could not be scheduled for "
        f"{format_when(starts_at, tz)}: {why}"
    )


SLOT_REMOVED_REASON = "The host removed this slot."
