"""The recurrence rule and the overlap check, against brute force, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.recurrence import (
    Busy,
    Recurrence,
    first_clash,
    local_start,
    overlaps,
    parse_weekdays,
)

ZONES = [ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
# first dates around the 2030 changes: EU 31 Mar / 27 Oct, US 10 Mar / 3 Nov
DST_DATES = st.sampled_from(
    [date(2030, 3, 1), date(2030, 3, 24), date(2030, 10, 20), date(2030, 10, 30), date(2030, 3, 9)]
)
TIMES = st.one_of(
    st.sampled_from([time(2, 0), time(2, 30), time(1, 30), time(3, 0)]),  # the gaps and folds
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
)
WEEKDAY_SETS = st.sets(st.integers(0, 6), min_size=1).map(lambda s: tuple(sorted(s)))


@st.composite
def rules(draw: st.DrawFn) -> Recurrence:
    first = draw(DST_DATES) + timedelta(days=draw(st.integers(0, 6)))
    bounded = draw(st.sampled_from(["count", "until", "both-open"]))
    return Recurrence(
        tz=draw(st.sampled_from(ZONES)),
        first_date=first,
        at=draw(TIMES),
        weekdays=draw(WEEKDAY_SETS),
        interval_weeks=draw(st.integers(1, 4)),
        until=first + timedelta(days=draw(st.integers(0, 120))) if bounded == "until" else None,
        count=draw(st.integers(1, 40)) if bounded == "count" else None,
    )


def brute_force(rule: Recurrence, days: int) -> list[datetime]:
    """Walk day by day: the definition, not the algorithm."""
    out = []
    week0 = rule.first_date - timedelta(days=rule.first_date.weekday())
    for n in range(days):
        day = rule.first_date + timedelta(days=n)
        if rule.until is not None and day > rule.until:
            break
        weeks = (day - week0).days // 7
        if day.weekday() in rule.weekdays and weeks % rule.interval_weeks == 0:
            out.append(local_start(day, rule.at, rule.tz))
    return out[: rule.count] if rule.count is not None else out


@settings(max_examples=300, deadline=None)
@given(rules())
def test_occurrences_match_the_definition(rule: Recurrence) -> None:
    horizon = 400
    limit = datetime.combine(rule.first_date + timedelta(days=horizon - 8), time(), tzinfo=UTC)
    got = list(rule.occurrences(until=limit))
    want = [s for s in brute_force(rule, horizon) if s <= limit]
    assert got == want


@settings(max_examples=300, deadline=None)
@given(rules())
def test_occurrences_keep_the_wall_clock(rule: Recurrence) -> None:
    starts = list(rule.occurrences(until=datetime(2031, 6, 1, tzinfo=UTC)))
    assert starts == sorted(set(starts))  # strictly increasing: never twice, never back
    for start in starts:
        assert start.tzinfo is UTC
        local = start.astimezone(rule.tz)
        assert local.weekday() in rule.weekdays
        wall = datetime.combine(local.date(), rule.at)
        shown = local.replace(tzinfo=None)
        if shown != wall:
            # only in the spring gap, moved forward by exactly the gap
            before = datetime.combine(local.date(), rule.at, tzinfo=rule.tz)
            later_offset = (before + timedelta(hours=3)).utcoffset()
            earlier_offset = (before - timedelta(hours=3)).utcoffset()
            assert later_offset is not None and earlier_offset is not None
            gap = later_offset - earlier_offset
            assert shown - wall == gap > timedelta(0)
        if rule.until is not None:
            assert local.date() <= rule.until
    if rule.count is not None:
        assert len(starts) <= rule.count


@settings(max_examples=200, deadline=None)
@given(rules(), st.integers(0, 200))
def test_after_and_until_slice_the_same_sequence(rule: Recurrence, skip: int) -> None:
    end = datetime(2031, 6, 1, tzinfo=UTC)
    full = list(rule.occurrences(until=end))
    if not full:
        return
    pivot = full[min(skip, len(full) - 1)]
    assert list(rule.occurrences(after=pivot, until=end)) == [s for s in full if s > pivot]
    if pivot != full[-1]:
        assert rule.next_after(pivot) == full[full.index(pivot) + 1]


def test_the_gap_and_the_fold_in_berlin() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    gap = Recurrence(berlin, date(2030, 3, 24), time(2, 30), (6,), count=3)
    assert [s.astimezone(berlin).strftime("%d %H:%M %Z") for s in gap.occurrences()] == [
        "24 02:30 CET",
        "31 03:30 CEST",
        "07 02:30 CEST",
    ]
    fold = Recurrence(berlin, date(2030, 10, 20), time(2, 30), (6,), count=3)
    assert [s.astimezone(berlin).strftime("%d %H:%M %Z") for s in fold.occurrences()] == [
        "20 02:30 CEST",
        "27 02:30 CEST",
        "03 02:30 CET",
    ]


def test_new_york_keeps_nine_oclock() -> None:
    ny = ZoneInfo("America/New_York")
    rule = Recurrence(ny, date(2030, 3, 4), time(9, 0), (0,), count=3)
    assert [s.strftime("%d %H:%M") for s in rule.occurrences()] == [
        "04 14:00",
        "11 13:00",
        "18 13:00",
    ]


def test_parse_weekdays() -> None:
    assert parse_weekdays("mon,thu") == (0, 3)
    assert parse_weekdays("Tuesday weekend") == (1, 5, 6)
    assert parse_weekdays("weekdays") == (0, 1, 2, 3, 4)
    for bad in ("t", "funday", "", "s"):
        with pytest.raises(ValueError):
            parse_weekdays(bad)


# --- overlaps --------------------------------------------------------------------------

MINUTE_STARTS = st.integers(0, 60 * 24 * 10).map(
    lambda m: datetime(2030, 3, 28, tzinfo=UTC) + timedelta(minutes=m)
)
INTERVALS = st.tuples(MINUTE_STARTS, st.integers(1, 720)).map(
    lambda t: (t[0], t[0] + timedelta(minutes=t[1]))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(INTERVALS, max_size=12), st.lists(INTERVALS, max_size=12))
def test_first_clash_agrees_with_pairwise(
    wanted: list[tuple[datetime, datetime]], taken: list[tuple[datetime, datetime]]
) -> None:
    busy = [Busy(s, e, f"#{i}") for i, (s, e) in enumerate(taken)]
    clashes = sorted(
        (w, b.starts_at) for w in wanted for b in busy if overlaps(*w, b.starts_at, b.ends_at)
    )
    found = first_clash(wanted, busy)
    if not clashes:
        assert found is None
    else:
        assert found is not None
        (start, end), hit = found
        assert start == clashes[0][0][0]  # the earliest clashing start
        assert (start, end) in wanted
        assert overlaps(start, end, hit.starts_at, hit.ends_at)


@settings(max_examples=200, deadline=None)
@given(rules(), rules(), st.integers(15, 240), st.integers(15, 240))
def test_series_clash_across_zones_and_dst_matches_brute_force(
    a: Recurrence, b: Recurrence, len_a: int, len_b: int
) -> None:
    """Two series, possibly in different zones, over DST changes: the sweep finds a clash
    exactly when some pair of real (UTC) intervals overlaps."""
    end = datetime(2031, 3, 1, tzinfo=UTC)
    ia = [(s, s + timedelta(minutes=len_a)) for s in a.occurrences(until=end)][:60]
    ib = [(s, s + timedelta(minutes=len_b)) for s in b.occurrences(until=end)][:60]
    pairwise = any(overlaps(*x, *y) for x in ia for y in ib)
    found = first_clash(ia, [Busy(s, e) for s, e in ib])
    assert (found is not None) == pairwise
    if found is not None:
        assert overlaps(*found[0], found[1].starts_at, found[1].ends_at)


def test_back_to_back_is_not_an_overlap() -> None:
    t = datetime(2030, 1, 1, 18, tzinfo=UTC)
    assert not overlaps(t, t + timedelta(hours=1), t + timedelta(hours=1), t + timedelta(hours=2))
    assert overlaps(t, t + timedelta(hours=1), t + timedelta(minutes=59), t + timedelta(hours=2))
