"""The modals: "Host a Space" (what `/space create` with no text opens) and "Tip the host".

A modal's submission becomes the same typed command the text grammar builds
(`CreateSpace(SpaceDraft(...))`, `Tip(...)`), so the core validates both one way. The
core names a bad value by its option name (`InvalidInput.field`); `*_FIELDS` maps that
to the input block the error is shown under.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from adapters.slack.blocks import Block, context, escape, plain, section
from bot.actors import UserRef
from bot.commands import types as t
from bot.errors import InvalidInput
from bot.models import DESCRIPTION_LENGTH
from bot.money import CURRENCIES, parse_amount
from bot.money import currency as lookup_currency
from bot.services.spaces import SpaceDraft

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")

CREATE = "space_create"  # callback_id of the create modal
TIP = "space_tip"  # callback_id of the tip modal

#: the core's field name -> the block the error is shown under
CREATE_FIELDS: dict[str, str] = {
    "title": "title",
    "description": "description",
    "starts": "starts_date",
    "starts_time": "starts_time",
    "duration": "duration",
    "price": "price",
    "currency": "currency",
    "tickets": "tickets",
    "limit": "limit",
}
TIP_FIELDS: dict[str, str] = {
    "amount": "amount",
    "price": "amount",  # the amount parser speaks of prices
    "currency": "currency",
    "message": "message",
}

FormValues = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Meta:
    """What a modal carries from where it was opened to its submission."""

    tz: str | None = None  # the zone the date and time are read in
    channel: str | None = None
    response_url: str | None = None  # the slash command's, for the reply after submit
    space_id: int | None = None  # tip
    host: str | None = None  # tip: the host's Slack user id

    def dump(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def load(cls, text: object, **renamed: str) -> Meta:
        """What `dump` wrote (or a button value with some fields `renamed`); a field that
        is missing or of the wrong type is left out, never an error."""
        try:
            data = json.loads(text) if isinstance(text, str) and text else {}
        except (ValueError, RecursionError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            value = data.get(renamed.get(name, name))
            if name == "space_id":
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    known[name] = value
            elif isinstance(value, str):
                known[name] = value
        if "host" in known and not _USER_ID.fullmatch(known["host"]):
            del known["host"]  # only ever a Slack user id: it is shown as a mention
        return cls(**known)


def form_values(view: Mapping[str, Any]) -> FormValues:
    """The submitted values by block id, whatever input element each block holds."""
    values: FormValues = {}
    state = (view.get("state") or {}).get("values") or {}
    for block_id, elements in state.items():
        for element in elements.values():
            kind = element.get("type")
            if kind == "datepicker":
                values[block_id] = element.get("selected_date")
            elif kind == "timepicker":
                values[block_id] = element.get("selected_time")
            elif kind in ("static_select", "radio_buttons"):
                option = element.get("selected_option") or {}
                values[block_id] = option.get("value")
            elif kind == "checkboxes":
                values[block_id] = bool(element.get("selected_options"))
            else:
                values[block_id] = element.get("value")
    return values


# --- building views ------------------------------------------------------------------------


def _input(
    block_id: str,
    label: str,
    element: Block,
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": {"action_id": "value", **element},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _text(value: Any, *, multiline: bool = False, max_length: int | None = None) -> Block:
    element: Block = {"type": "plain_text_input", "multiline": multiline}
    if max_length:
        element["max_length"] = max_length
    if value:
        element["initial_value"] = str(value)
    return element


def _number(value: Any, *, decimal: bool = False, minimum: str | None = None) -> Block:
    element: Block = {"type": "number_input", "is_decimal_allowed": decimal}
    if minimum is not None:
        element["min_value"] = minimum
    if value not in (None, ""):
        element["initial_value"] = str(value)
    return element


def _currency_select(code: str) -> Block:
    def option(c: str) -> Block:
        return {"text": plain(c.upper()), "value": c}

    return {
        "type": "static_select",
        "options": [option(c) for c in CURRENCIES],
        "initial_option": option(code if code in CURRENCIES else "usd"),
    }


def _notice(notice: str | None) -> list[Block]:
    return [section(f":warning: {escape(notice)}")] if notice else []


def _modal(callback_id: str, title: str, submit: str, blocks: list[Block], meta: Meta) -> Block:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "private_metadata": meta.dump(),
        "blocks": blocks,
    }


def create_view(
    meta: Meta,
    *,
    default_currency: str,
    title_limit: int,
    values: FormValues | None = None,
    notice: str | None = None,
) -> Block:
    """The "Host a Space" form. `title_limit` is the core's (STAGEPASS_MAX_TITLE_LENGTH),
    so Slack stops a long title where the core would refuse it."""
    v = values or {}
    where = f"In your time zone, {meta.tz}" if meta.tz else "In your Stagepass time zone"
    time_element: Block = {"type": "timepicker"}
    if meta.tz:
        time_element["timezone"] = meta.tz
    if v.get("starts_time"):
        time_element["initial_time"] = v["starts_time"]
    date_element: Block = {"type": "datepicker"}
    if v.get("starts_date"):
        date_element["initial_date"] = v["starts_date"]
    manual: Block = {
        "type": "checkboxes",
        "options": [{"text": plain("I'll start it myself with /space start"), "value": "yes"}],
    }
    if v.get("manual"):
        manual["initial_options"] = manual["options"]
    blocks = [
        *_notice(notice),
        _input("title", "Title", _text(v.get("title"), max_length=title_limit)),
        _input(
            "description",
            "Description",
            _text(v.get("description"), multiline=True, max_length=DESCRIPTION_LENGTH),
            optional=True,
        ),
        _input("starts_date", "Date", date_element),
        _input(
            "starts_time",
            "Start time",
            time_element,
            hint=f"{where} (change it with /tz set Europe/Berlin).",
        ),
        _input(
            "duration", "Duration (minutes)", _number(v.get("duration"), minimum="1"), optional=True
        ),
        _input("tickets", "Tickets", _number(v.get("tickets"), minimum="1")),
        _input(
            "price",
            "Price",
            _number(v.get("price"), decimal=True, minimum="0"),
            optional=True,
            hint="Leave empty or 0 for a free Space.",
        ),
        _input("currency", "Currency", _currency_select(v.get("currency") or default_currency)),
        _input("limit", "Tickets per person", _number(v.get("limit"), minimum="1"), optional=True),
        _input("manual", "Start", manual, optional=True),
    ]
    return _modal(CREATE, "Host a Space", "Announce", blocks, meta)


def tip_view(
    meta: Meta,
    *,
    default_currency: str,
    values: FormValues | None = None,
    notice: str | None = None,
) -> Block:
    v = values or {}
    public: Block = {
        "type": "checkboxes",
        "options": [{"text": plain("Thank me in the channel"), "value": "yes"}],
    }
    if v.get("public", True):
        public["initial_options"] = public["options"]
    blocks = [
        *_notice(notice),
        section(f"A tip for <@{meta.host}>" if meta.host else "A tip for the host"),
        _input("amount", "Amount", _number(v.get("amount"), decimal=True, minimum="0")),
        _input("currency", "Currency", _currency_select(v.get("currency") or default_currency)),
        _input("message", "Message", _text(v.get("message"), max_length=300), optional=True),
        _input("public", "Public", public, optional=True),
    ]
    return _modal(TIP, "Tip the host", "Tip", blocks, meta)


def message_view(title: str, text: str, *, working: bool = False) -> Block:
    """A modal that only says something: "working on it", then how it went."""
    blocks = [section(escape(text))]
    if working:
        blocks.append(context(":hourglass_flowing_sand: This can take a few seconds."))
    return {
        "type": "modal",
        "title": plain(title, 24),
        "close": plain("Close", 24),
        "blocks": blocks,
    }


# --- reading submissions -------------------------------------------------------------------


def _whole(values: FormValues, block_id: str, field: str, *, label: str) -> int | None:
    raw = values.get(block_id)
    if raw in (None, ""):
        return None
    text = str(raw).strip()
    if not text.isdigit():
        raise InvalidInput(f"{label} must be a whole number.", field=field)
    return int(text)


def read_create(values: FormValues, tz: ZoneInfo, default_currency: str) -> t.CreateSpace:
    """The submitted form as the core's `CreateSpace`; `InvalidInput` names the field."""
    day, clock = values.get("starts_date"), values.get("starts_time")
    if not day:
        raise InvalidInput("Pick the day the Space starts.", field="starts")
    if not clock:
        raise InvalidInput("Pick the time the Space starts.", field="starts_time")
    try:
        local = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=tz)
    except ValueError:
        raise InvalidInput("That date or time is not valid.", field="starts") from None
    code = lookup_currency(values.get("currency") or default_currency).code
    price = str(values.get("price") or "").strip()
    capacity = _whole(values, "tickets", "tickets", label="Tickets")
    if capacity is None:
        raise InvalidInput("Say how many tickets there are.", field="tickets")
    return t.CreateSpace(
        SpaceDraft(
            title=str(values.get("title") or ""),
            starts_at=local.astimezone(UTC),
            capacity=capacity,
            price_minor=parse_amount(price, code) if price else 0,
            currency=code,
            duration_minutes=_whole(values, "duration", "duration", label="The duration"),
            description=str(values.get("description") or "").strip(),
            per_buyer_limit=_whole(values, "limit", "limit", label="Tickets per person"),
            manual_start=bool(values.get("manual")),
        )
    )


def read_tip(values: FormValues, meta: Meta, default_currency: str) -> t.Tip:
    """The tip form -> `Tip`: for the host mentioned, or (no Slack host: a Space hosted
    from a linked community) for the Space's host."""
    if not meta.host and meta.space_id is None:
        raise InvalidInput("This tip form lost track of the host; open it again.")
    amount = str(values.get("amount") or "").strip()
    if not amount:
        raise InvalidInput("Say how much you'd like to tip.", field="amount")
    code = lookup_currency(values.get("currency") or default_currency).code
    parse_amount(amount, code)  # checked here so the error lands on the field
    return t.Tip(
        UserRef(meta.host) if meta.host else None,
        amount,
        code,
        str(values.get("message") or "").strip()[:300],
        bool(values.get("public")),
        meta.space_id,
    )


def field_errors(field: str | None, message: str, fields: Mapping[str, str]) -> dict[str, str]:
    """`response_action: errors` for an error the core pinned to a field (else empty)."""
    block = fields.get(field or "")
    return {block: message[:2000]} if block else {}
