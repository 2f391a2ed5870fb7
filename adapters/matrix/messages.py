"""Translation both ways between Matrix messages and the core's command lines and replies.

Matrix has no slash-command registry: a command is a message that starts with `!`
(`!space create ...`) or, where a client sends it as text, `/`. Replies are `m.text`
(errors `m.notice`) with an HTML `formatted_body` and a plain `body`; buttons become the
commands to type (`!ticket buy 12`) or links.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from bot.commands.grammar import GROUPS
from bot.events import DirectMessage
from bot.replies import Reply

Content = dict[str, Any]


_PILL = re.compile(r'<a href="https://matrix\.to/#/(@[^"?]+)"[^>]*>.*?</a>', re.S)
_LEADING_COMMAND = re.compile(r"(?<![\w!/])/([a-z]+)\b")


def command_line(body: str, formatted: str | None = None) -> str | None:
    """The core's command line a message carries (`!space list` -> `/space list`), or
    None when it is ordinary talk. A mention pill in the HTML body becomes the user id."""
    text = body.strip()
    if formatted and "matrix.to" in formatted:
        text = re.sub(r"<[^>]+>", "", _PILL.sub(r"\1", formatted)).strip()
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
        text = text.replace("&amp;", "&")
    if len(text) < 2 or text[0] not in "!/":
        return None
    word = text[1:].split(maxsplit=1)[0].lower() if text[1:].strip() else ""
    if word not in GROUPS:
        return None
    return "/" + text[1:]


def bang(text: str) -> str:
    """The core's `/command` hints as Matrix users type them (`!command`)."""
    return _LEADING_COMMAND.sub(lambda m: "!" + m[1] if m[1] in GROUPS else m[0], text)


def _html_lines(text: str) -> str:
    return "<br>".join(escape(line) for line in text.split("\n"))


def reply_content(reply: Reply) -> Content:
    """A core reply as a Matrix message: an error is a notice, buttons are commands or
    links under the text."""
    text = bang(reply.text)
    plain = [f"{reply.title}\n" if reply.title else "", text]
    html = [f"<b>{escape(reply.title)}</b><br>" if reply.title else "", _html_lines(text)]
    for button in reply.buttons:
        if button.url:
            plain.append(f"\n{button.label}: {button.url}")
            html.append(f'<br><a href="{escape(button.url)}">{escape(button.label)}</a>')
        elif button.command:
            typed = bang(button.command)
            plain.append(f"\n{button.label}: {typed}")
            html.append(f"<br>{escape(button.label)}: <code>{escape(typed)}</code>")
    return {
        "msgtype": "m.notice" if reply.error else "m.text",
        "body": "".join(plain),
        "format": "org.matrix.custom.html",
        "formatted_body": "".join(html),
    }


def dm_content(message: DirectMessage) -> Content:
    text = bang(message.text)
    plain = [text] + [f"{label}: {url}" for label, url in message.links]
    html = [_html_lines(text)] + [
        f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in message.links
    ]
    return {
        "msgtype": "m.text",
        "body": "\n".join(plain),
        "format": "org.matrix.custom.html",
        "formatted_body": "<br>".join(html),
    }


def notice(text: str) -> Content:
    return {"msgtype": "m.notice", "body": bang(text)}


def in_thread(content: Content, root: str) -> Content:
    """`content` as a reply in the thread of `root` (clients without threads show it as
    a reply to `root`)."""
    return {
        **content,
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root},
        },
    }


def edit(content: Content, event_id: str) -> Content:
    """A replacement of `event_id` with `content` (clients show the newest)."""
    return {
        "msgtype": content["msgtype"],
        "body": "* " + content["body"],
        "m.new_content": content,
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
