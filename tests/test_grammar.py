"""The command grammar: typed commands for good input, clear errors for anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.actors import UserRef
from bot.commands import types as t
from bot.commands.grammar import USAGES, help_text, parse
from bot.commands.times import format_when, mark_times
from bot.errors import InvalidInput

NOW = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)  # a Monday
BERLIN = ZoneInfo("Europe/Berlin")


def p(text: str, tz: ZoneInfo = BERLIN) -> t.Command:
    return parse(text, tz=tz, now=NOW)


def test_create_reads_every_option_in_the_users_zone() -> None:
    cmd = p(
        '/space create title:"Ask me anything" starts:"tomorrow 18:00" price:5 '
        'currency:usd tickets:100 duration:90 limit:2 description:"Bring questions"'
    )
    assert isinstance(cmd, t.CreateSpace)
    d = cmd.draft
    assert d.title == "Ask me anything"
    assert d.starts_at == datetime(2030, 1, 8, 17, 0, tzinfo=UTC)  # 18:00 CET
    assert (d.price_minor, d.currency, d.capacity) == (500, "usd", 100)
    assert (d.duration_minutes, d.per_buyer_limit, d.description) == (90, 2, "Bring questions")


def test_zero_decimal_currency_takes_whole_amounts() -> None:
    cmd = p('/space create title:x starts:"2030-02-01 10:00" price:500 currency:jpy tickets:5')
    assert isinstance(cmd, t.CreateSpace)
    assert (cmd.draft.price_minor, cmd.draft.currency) == (500, "jpy")
    with pytest.raises(InvalidInput, match="no decimals"):
        p('/space create title:x starts:"2030-02-01 10:00" price:5.5 currency:jpy tickets:5')


def test_invite_makes_lists_and_withdraws_links() -> None:
    assert p("/space invite 12 uses:10") == t.MakeInvite(12, 10)
    assert p("/space invite #12 revoke:3f9a0c1b") == t.RevokeInvite(12, "3f9a0c1b")
    assert p("/space invites 12") == t.ListInvites(12)
    with pytest.raises(InvalidInput, match="not both"):
        p("/space invite 12 uses:10 revoke:3f9a0c1b")
    with pytest.raises(InvalidInput, match="uses: is missing"):
        p("/space invite 12")
    with pytest.raises(InvalidInput, match="Unknown option uses: for /space invites"):
        p("/space invites 12 uses:3")


def test_smart_quotes_and_platform_mentions() -> None:
    cmd = p("/space create title:\u201cFancy quotes\u201d starts:\u201cfri 18:00\u201d tickets:3")
    assert isinstance(cmd, t.CreateSpace) and cmd.draft.title == "Fancy quotes"
    assert p("/stage promote <@123>") == t.StageCommand("promote", None, UserRef("123"))
    assert p("/stage promote <@U1|bob> space:4") == t.StageCommand(
        "promote", 4, UserRef("U1", "bob")
    )
    assert p("/space cohost add #3 @carol") == t.SetCohost(3, UserRef("carol", "carol"), True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/space create starts:tomorrow tickets:3", "title: is missing"),
        ('/space create title:x starts:"whenever-ish" tickets:3', "can't read"),
        ("/space create title:x starts:tomorrow tickets:3 price:-5", "negative"),
        ("/space create title:x starts:tomorrow tickets:3 currency:zzz", "Unknown currency"),
        ("/space create title:x starts:tomorrow tickets:many", "whole number"),
        ('/space create title:"x starts:tomorrow tickets:3', "quote"),
        ("/space create title:x starts:tomorrow tickets:3 colour:red", "Unknown option colour"),
        ("/space fly", "needs one of"),
        ("/dance", "There is no /dance"),
        ("hello", "start with /"),
        ("/ticket buy", "Name the Space"),
        ("/ticket buy abc", "not a Space number"),
        ("/stage promote bob", "Mention someone"),
        ("/remind maybe 3", "on or off"),
        ("/tz set", "Name a zone"),
    ],
)
def test_bad_input_gets_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        p(text)


def test_help_covers_every_command_and_refuses_unknown_topics() -> None:
    full = help_text()
    for usage in USAGES:
        assert usage.usage in full
    assert "/stage promote" in help_text("stage")
    with pytest.raises(InvalidInput, match="No command"):
        help_text("nope")


def test_help_for_one_command_says_formats_defaults_who_and_an_example() -> None:
    text = help_text("/space create")
    assert '"fri 18:00"' in text and '"2030-05-01 18:00"' in text  # accepted date formats
    assert "default 60" in text and "default 1" in text and "free unless given" in text
    assert text.count("Example: /space create") == 1
    assert "Who: " in text and "STAGEPASS_HOST_RULES" in text
    example = text.split("Example: ")[1]
    assert isinstance(parse(example, tz=BERLIN, now=NOW), t.CreateSpace)  # the example works
    assert "Who:" not in help_text("space")  # a group lists usages only


def test_help_says_who_may_from_the_permission_table() -> None:
    assert "Who: the host, co-hosts and moderators." in help_text("stage promote")
    assert "Who: the host." in help_text("space edit")
    assert "Who:" not in help_text("space list")  # anyone: nothing to say


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("/spce list", "Did you mean /space?"),
        ("/space lsit", "Did you mean /space list?"),
        ("/stage promte @bob", "Did you mean /stage promote?"),
        ("/space create titel:x starts:tomorrow tickets:3", "Did you mean title:?"),
        ("/ticket buy 1 quantty:2", "Did you mean quantity:?"),
    ],
)
def test_typos_of_commands_and_options_get_a_suggestion(text: str, hint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(text, tz=BERLIN, now=NOW)
    assert hint in caught.value.message


def test_no_suggestion_for_a_word_like_no_command() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse("/xyzzy", tz=BERLIN, now=NOW)
    assert "Did you mean" not in caught.value.message
    with pytest.raises(InvalidInput, match="Did you mean /space create"):
        help_text("space crate")


_words = st.sampled_from(
    [
        "/space",
        "create",
        "list",
        "info",
        "edit",
        "cancel",
        "start",
        "end",
        "cohost",
        "add",
        "remove",
        "/ticket",
        "buy",
        "show",
        "refund",
        "/stage",
        "promote",
        "hand",
        "up",
        "down",
        "/remind",
        "on",
        "off",
        "/tip",
        "/slot",
        "/payouts",
        "connect",
        "/tz",
        "set",
        "/help",
        "12",
        "#3",
        "@bob",
        "<@123>",
        'title:"A b"',
        "starts:tomorrow",
        'starts:"fri 18:00"',
        "price:5",
        "price:-1",
        "price:1e9",
        "currency:jpy",
        "tickets:0",
        "tickets:100",
        "duration:1h30m",
        "limit:3",
        "quantity:2",
        "space:4",
        '"',
        "::",
        'reason:"x"',
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_words, min_size=1, max_size=8).map(" ".join))
def test_grammar_like_input_never_raises_anything_else(text: str) -> None:
    try:
        command = p(text)
    except InvalidInput as exc:
        assert exc.message
    else:
        assert type(command) in t.Command.__args__


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    for candidate in (text, "/" + text, "/space create " + text, "/stage " + text):
        try:
            p(candidate)
        except InvalidInput as exc:
            assert exc.message


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(
        ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "America/Sao_Paulo"]
    ),
)
def test_every_time_format_when_writes_is_found_again(when: datetime, zone: str) -> None:
    """What a platform's time markup replaces (Discord's `<t:…>`): each time the core
    wrote in the reader's zone, to the minute, in any season (the repeated hour too)."""
    tz = ZoneInfo(zone)
    text = f"Starts {format_when(when, tz)}; doors at {format_when(when, tz)}."
    marked = mark_times(text, tz, lambda found: f"<{found.isoformat()}>")
    minute = when.replace(second=0, microsecond=0).isoformat()
    assert marked == f"Starts <{minute}>; doors at <{minute}>."


def test_times_written_in_another_zone_or_look_alikes_are_left_alone() -> None:
    berlin = format_when(datetime(2030, 5, 3, 16, 0, tzinfo=UTC), ZoneInfo("Europe/Berlin"))
    text = f"{berlin}, and Mon 31 Feb 2030, 10:00 UTC, and Fri 3 May 2030, 16:00 UTC"
    marked = mark_times(text, ZoneInfo("UTC"), lambda found: "<t>")
    # Berlin's time is not the UTC reader's; 31 Feb is no date; the last one is real
    assert marked == f"{berlin}, and Mon 31 Feb 2030, 10:00 UTC, and <t>"
