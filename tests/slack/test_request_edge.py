"""`/slack/events` as an attacker (and a confused Slack) would use it: whatever the body
and headers, the answer is 401 when Slack did not sign it, 400 when a signed body is not
a Slack payload, and never a 500; nothing reaches the Web API before the signature."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.signatures import Signatures
from tests.slack.conftest import HOST, SECRET, Slack

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
CHECKS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def signed(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": Signatures(SECRET).sign(ts, body)}


async def post(
    slack: Slack, body: bytes, content_type: str, headers: Mapping[str, str | bytes]
) -> int:
    raw = {"Content-Type": content_type, **headers}
    response = await slack.http.post(
        "/slack/events",
        content=body,
        headers={
            k.encode(): v if isinstance(v, bytes) else v.encode("latin-1") for k, v in raw.items()
        },
    )
    return response.status_code


async def test_what_used_to_be_500s(slack: Slack) -> None:
    now = str(int(time.time()))
    cases: list[tuple[str, bytes, str, Mapping[str, str | bytes], int]] = [
        ("unsigned garbage", b"\x00garbage{{", FORM, {}, 401),
        ("unsigned non-UTF-8", b"\xff\xfe\xfd", FORM, {}, 401),
        ("unsigned payload=%7B", b"payload=%7B", FORM, {}, 401),
        (
            "non-numeric timestamp",
            b"payload=%7B",
            FORM,
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
            401,
        ),
        (
            "timestamp with a sign",
            b"a=b",
            FORM,
            {"X-Slack-Request-Timestamp": "+" + now, "X-Slack-Signature": "v0=00"},
            401,
        ),
        (
            "huge timestamp",
            b"a=b",
            FORM,
            {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"},
            401,
        ),
        (
            "non-ASCII signature",
            b"a=b",
            FORM,
            {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=\xe9".encode("latin-1")},
            401,
        ),
        ("signed non-UTF-8", b"\xff\xfe\xfd", FORM, signed(b"\xff\xfe\xfd"), 400),
        ("signed payload=%7B", b"payload=%7B", FORM, signed(b"payload=%7B"), 400),
        ("signed JSON list", b"[1, 2]", JSON, signed(b"[1, 2]"), 400),
        ("signed empty body", b"", FORM, signed(b""), 400),
        (
            "signed event without an event",
            b'{"type":"event_callback","event":"x"}',
            JSON,
            signed(b'{"type":"event_callback","event":"x"}'),
            400,
        ),
        (
            "signed team of the wrong type",
            b'{"type":"block_actions","team":5}',
            JSON,
            signed(b'{"type":"block_actions","team":5}'),
            400,
        ),
        (
            "signed command without a user",
            b"command=%2Fspace&team_id=T0ACME",
            FORM,
            signed(b"command=%2Fspace&team_id=T0ACME"),
            400,
        ),
    ]
    for name, body, content_type, headers, expected in cases:
        assert await post(slack, body, content_type, headers) == expected, name
    await slack.settle()
    assert slack.fake.calls == []


async def test_a_signed_request_with_a_stale_or_future_timestamp_is_401(slack: Slack) -> None:
    body, _ = slack.command_body(HOST, "/help")
    raw = body.encode()
    for offset in (-301, +301, -(10**6)):
        assert await post(slack, raw, FORM, signed(raw, int(time.time()) + offset)) == 401
    assert await post(slack, raw, FORM, signed(raw)) == 200


@CHECKS
@given(
    body=st.binary(max_size=400),
    content_type=st.sampled_from([FORM, JSON, "text/plain", "", "application/json; charset=x"]),
    timestamp=st.one_of(st.text(max_size=30), st.integers().map(str)),
    signature=st.one_of(st.text(max_size=80), st.just("v0=" + "a" * 64)),
)
async def test_unsigned_anything_is_401(
    slack: Slack, body: bytes, content_type: str, timestamp: str, signature: str
) -> None:
    sent = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    # as raw Latin-1 bytes; values no HTTP client can send (line breaks) are left out
    headers = {
        k: v.encode("latin-1")
        for k, v in sent.items()
        if v.isprintable() and v == v.strip() and all(ord(c) < 256 for c in v)
    }
    assert await post(slack, body, content_type, headers) == 401
    assert slack.fake.calls == []


@CHECKS
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.builds(lambda s: b"payload=" + urllib.parse.quote(s).encode(), st.text(max_size=200)),
    ),
    content_type=st.sampled_from([FORM, JSON, "text/plain"]),
)
async def test_signed_garbage_is_400_never_500(
    slack: Slack, body: bytes, content_type: str
) -> None:
    assert await post(slack, body, content_type, signed(body)) in (200, 400, 404)


# --- signed payloads of Slack's shape with one field replaced by anything ----------------------

JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def block_actions() -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T0ACME", "domain": "acme"},
        "user": {"id": HOST, "username": "alice", "team_id": "T0ACME"},
        "api_app_id": "A0STAGE",
        "trigger_id": "trigger.1",
        "container": {"type": "view", "view_id": "VHOME"},
        "actions": [
            {
                "type": "button",
                "action_id": "tip",
                "block_id": "b",
                "value": '{"space": 1, "host": "UHOST01"}',
            }
        ],
    }


def view_submission() -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": "T0ACME", "domain": "acme"},
        "user": {"id": HOST, "username": "alice", "team_id": "T0ACME"},
        "view": {
            "id": "VMODAL01",
            "type": "modal",
            "callback_id": "space_tip",
            "private_metadata": '{"host": "UHOST01"}',
            "state": {"values": {"amount": {"value": {"type": "number_input", "value": "3"}}}},
        },
    }


def app_home_opened() -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T0ACME",
        "api_app_id": "A0STAGE",
        "event_id": "Ev1",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": HOST, "tab": "home"},
    }


Path = tuple[str | int, ...]
PATHS: dict[str, tuple[Callable[[], dict[str, Any]], list[Path]]] = {
    "block_actions": (
        block_actions,
        [
            ("team",),
            ("user",),
            ("user", "id"),
            ("actions",),
            ("actions", 0),
            ("actions", 0, "value"),
            ("actions", 0, "action_id"),
            ("container",),
        ],
    ),
    "view_submission": (
        view_submission,
        [
            ("view",),
            ("view", "state"),
            ("view", "state", "values"),
            ("view", "private_metadata"),
            ("view", "id"),
            ("view", "state", "values", "amount"),
        ],
    ),
    "app_home_opened": (
        app_home_opened,
        [("event",), ("event", "user"), ("event", "tab"), ("team_id",), ("event", "type")],
    ),
}


def replaced(payload: dict[str, Any], path: Path, value: object) -> object:
    node: Any = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes, str]:
    kind = draw(st.sampled_from(sorted(PATHS)))
    build, paths = PATHS[kind]
    path = draw(st.sampled_from(paths))
    return (kind, *encoded(kind, replaced(build(), path, draw(JSONS))))


def encoded(kind: str, payload: object) -> tuple[bytes, str]:
    """As Slack sends it: events as JSON, interactivity as a form with one `payload`."""
    if kind == "app_home_opened":
        return json.dumps(payload).encode(), JSON
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode(), FORM


@settings(CHECKS, max_examples=200)
@given(case=mutated())
async def test_signed_payloads_of_the_wrong_shape_never_fail(
    slack: Slack, case: tuple[str, bytes, str]
) -> None:
    kind, body, content_type = case
    failures = slack.adapter.tasks.failures
    assert await post(slack, body, content_type, signed(body)) in (200, 400, 404), kind
    await slack.settle()
    assert slack.adapter.tasks.failures == failures, kind  # nothing failed after the ack


async def test_the_unchanged_payloads_go_through(slack: Slack) -> None:
    """The mutation test starts from payloads the adapter takes (so it tests something)."""
    for kind, (build, _) in sorted(PATHS.items()):
        body, content_type = encoded(kind, build())
        assert await post(slack, body, content_type, signed(body)) == 200, kind
    odd = block_actions()
    odd["actions"][0]["value"] = "not json"
    body, _ = encoded("block_actions", odd)
    assert await post(slack, body, FORM, signed(body)) == 200
    await slack.settle()
    assert slack.adapter.tasks.failures == 0
    assert slack.fake.called("views.publish")  # the home tab was drawn


async def test_slacks_url_check_is_answered(slack: Slack) -> None:
    """Slack checks the Event Subscriptions URL when it is saved (signed, like the rest)."""
    body = (
        b'{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",'
        b'"type":"url_verification"}'
    )
    response = await slack.http.post(
        "/slack/events", content=body, headers={"Content-Type": JSON, **signed(body)}
    )
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.text
    assert await post(slack, body, JSON, {}) == 401


async def test_a_tip_buttons_host_is_only_ever_a_user_id(slack: Slack) -> None:
    """A value that is not a Slack user id never reaches the modal's mrkdwn."""
    odd = block_actions()
    odd["actions"][0]["value"] = json.dumps({"space": 1, "host": "U1> <!here"})
    body, _ = encoded("block_actions", odd)
    assert await post(slack, body, FORM, signed(body)) == 200
    await slack.settle()
    [opened] = slack.fake.called("views.open")
    assert "<!here" not in json.dumps(opened.json("view"))
    assert "A tip for the host" in json.dumps(opened.json("view"))
