"""Translation both ways between Slack's slash commands and the core's command lines,
and from the core's `Reply` and `DirectMessage` to Slack messages.

Slack keeps `/remind` for itself, so the core's `/remind` is typed `/reminder` here
(and `/stagepass <any command>` reaches every command, e.g. `/stagepass remind on 12`).
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from adapters.slack.blocks import Block, actions, button, date_token, escape, section
from bot.commands.times import mark_times
from bot.events import DirectMessage
from bot.models import Space
from bot.replies import Button, Reply
from bot.wording import full_label, space_buttons

#: Slack command -> the core's command group; "" takes a whole command line as its text.
COMMANDS: dict[str, str] = {
    "/space": "space",
    "/ticket": "ticket",
    "/stage": "stage",
    "/tip": "tip",
    "/reminder": "remind",
    "/remind": "remind",  # if the workspace lets an app have it
    "/slot": "slot",
    "/payouts": "payouts",
    "/tz": "tz",
    "/community": "community",
    "/help": "help",
    "/stagepass": "",
}

RUN = "run"  # action_id prefix of buttons that run a command as the clicker
LINK = "link"  # action_id prefix of buttons that only open a URL

_CORE_REMIND = re.compile(r"(?<![\w/])/remind\b(?!er)")
_NAMED_MENTION = re.compile(r"<@([UW][A-Z0-9]+)\|[^>]*>")
_MENTIONED = re.compile(r"<@([UW][A-Z0-9]+)>")
_SECTION = 2900
_UTC = ZoneInfo("UTC")


def unescape(text: str) -> str:
    """Slack's command text with the three characters it escapes put back (`&amp;` last,
    so `&amp;lt;` stays the text `&lt;`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def command_line(command: str, text: str) -> str:
    """What a Slack slash command says, as the core's command line: unescaped, and with
    mentions (`<@U123|bob>`) down to the id, so the core's replies name people by id and
    `reply_message` can mention them."""
    group = COMMANDS.get(command, command.lstrip("/"))
    text = _NAMED_MENTION.sub(r"<@\1>", text).strip()
    # Slack escapes only what the person typed; a real mention's brackets are not escaped
    text = unescape(text)
    if group == "":
        return "/" + (text.lstrip("/") or "help")
    return f"/{group} {text}".strip()


def slack_text(text: str) -> str:
    """The core's wording with its command names as they are typed in Slack."""
    return _CORE_REMIND.sub("/reminder", text)


def _sections(text: str) -> list[Block]:
    """Text in sections of at most ~3,000 characters, split between lines."""
    blocks, chunk = [], ""
    for line in text.split("\n"):
        if chunk and len(chunk) + len(line) + 1 > _SECTION:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    blocks.append(section(chunk or " "))
    return blocks


def reply_button(item: Button, index: int) -> Block:
    if item.url is not None:
        return button(item.label, f"{LINK}:{index}", url=item.url)
    return button(item.label, f"{RUN}:{index}", value=item.command or "/help")


def mentioned(line: str) -> frozenset[str]:
    """The Slack user ids a command line mentions."""
    return frozenset(_MENTIONED.findall(line))


def with_mentions(text: str, people: frozenset[str]) -> str:
    """Escaped text with each of `people` (user ids the core wrote as names) as a Slack
    mention, which Slack shows as the person's name in the reader's workspace."""
    if not people:
        return text
    ids = "|".join(re.escape(p) for p in sorted(people, key=len, reverse=True))
    return re.sub(rf"(?<![\w@<])({ids})(?!\w)", r"<@\1>", text)


def buy_button(space: Space, action_id: str) -> Block:
    """A Space's buy button, or in its place what says why not ("Sold out", "All held,
    try later"). Slack has no disabled buttons: that one shows the Space instead."""
    full = full_label(space)
    if full is not None:
        return button(full, action_id, value=f"/space info {space.id}")
    buy = space_buttons(space)[0]
    return button(buy.label, action_id, value=buy.command, style="primary")


def shown(text: str, tz: ZoneInfo, people: frozenset[str] = frozenset()) -> str:
    """The core's text as Slack mrkdwn: escaped (a title `<!here>` pings nobody), its
    times (written in the reader's zone `tz`) as `<!date^…>` tokens, which Slack shows in
    the reader's own zone, and `people` mentioned."""
    return with_mentions(mark_times(escape(slack_text(text)), tz, date_token), people)


def reply_message(
    reply: Reply, people: frozenset[str] = frozenset(), tz: ZoneInfo = _UTC
) -> dict[str, Any]:
    """`text` (notifications and fallback) and `blocks` for a reply, for a reader in
    `tz`."""
    text = shown(reply.text, tz, people)
    body = f":warning: {text}" if reply.error else text
    blocks: list[Block] = []
    if reply.title:
        blocks.append(section(f"*{escape(reply.title)}*"))
    blocks += _sections(body)
    if reply.buttons:
        blocks.append(actions(*(reply_button(b, i) for i, b in enumerate(reply.buttons))))
    fallback = f"{escape(reply.title)}: {text}" if reply.title else text
    return {"text": fallback[:3000], "blocks": blocks[:50]}


def response_type(reply: Reply) -> str:
    """Every reply is only the person's in Slack: what the rest of the workspace should
    see (a Space announced, live, a new speaker) the notifier posts once, in the
    announcement channel or the announcement's thread."""
    return "ephemeral"


def dm_message(message: DirectMessage, tz: ZoneInfo = _UTC) -> dict[str, Any]:
    """A core DM for a reader in `tz` (the core wrote its times in their zone)."""
    text = shown(message.text, tz)
    blocks: list[Block] = _sections(text)
    if message.links:
        blocks.append(
            actions(
                *(
                    button(label, f"{LINK}:{i}", url=url)
                    for i, (label, url) in enumerate(message.links)
                )
            )
        )
    fallback = "\n".join([text, *(f"{escape(label)}: {url}" for label, url in message.links)])
    return {"text": fallback[:3000], "blocks": blocks[:50]}
