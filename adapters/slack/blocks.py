"""Block Kit pieces: escaped text, date tokens, sections, buttons.

Slack's limits are applied here, once: a header holds 150 characters, a section 3,000,
a button label 75 and a button value 2,000.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.commands.times import format_when

Block = dict[str, Any]

_UTC = ZoneInfo("UTC")


def escape(text: str) -> str:
    """Text made safe for mrkdwn: the three characters Slack reads as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def date_token(when: datetime) -> str:
    """A time every viewer reads in their own zone, as Slack formats dates
    (`<!date^UNIX^{date_short_pretty} {time}|fallback>`; the fallback, for clients that
    cannot, is in UTC and says so)."""
    fallback = escape(format_when(when, _UTC))
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def plain(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, 3000)}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, 150)}


def section(text: str, *, accessory: Block | None = None, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = block_id
    return block


def fields(*items: str) -> Block:
    return {"type": "section", "fields": [mrkdwn(item) for item in items[:10]]}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def divider() -> Block:
    return {"type": "divider"}


def confirm(title: str, text: str, yes: str, no: str = "Keep it") -> dict[str, Any]:
    return {
        "title": plain(title, 100),
        "text": mrkdwn(text),
        "confirm": plain(yes, 30),
        "deny": plain(no, 30),
        "style": "danger",
    }


def button(
    label: str,
    action_id: str,
    *,
    value: str | None = None,
    url: str | None = None,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> Block:
    element: Block = {"type": "button", "text": plain(label, 75), "action_id": action_id}
    if value is not None:
        element["value"] = value[:2000]
    if url is not None:
        element["url"] = url
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements[:25])}
    if block_id is not None:
        block["block_id"] = block_id
    return block
