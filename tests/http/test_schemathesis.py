"""Property-based passes against the whole app as `stagepass run` serves it, over real HTTP.

Schemathesis, for every documented operation: generated requests (valid and not) get no
5xx, and every answer is a documented status with a body and content type that match the
document. Hypothesis, for the web routes the document leaves out (invite links, web
sign-in, buying and paying, the host's desk, manage my ticket): no 5xx, no traceback or
server secret in any body, a token, id, cookie or CSRF value that is not the right one
gets a 4xx page saying why (a form post never goes through with one), and a sign-in
redirect stays on this site.

The server runs in a thread of its own (its own event loop, database and core), so the
synchronous calls cannot block it. Examples are bounded and derandomized: the file runs
in well under a minute, the same way every time."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.actors import Actor
from bot.core import Core
from bot.http.server import server
from bot.http.session import csrf_of
from bot.models import Platform, Visibility
from bot.services.promos import PromoDraft
from bot.services.spaces import SpaceDraft
from bot.settings import Settings, load_settings
from bot.wiring import Stagepass
from tests.http.conftest import TOKEN, person
from tests.services import drop_postgres_database, fresh_postgres_database
from tests.waiting import eventually

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
T = TypeVar("T")

#: Per operation; enough to cover each body's shapes and every parameter's edges.
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_SCRUBBED = (
    "DATABASE_URL",
    "STAGEPASS_DATA_DIR",
    "STRIPE_SECRET_KEY",
    "DISCORD_TOKEN",
    "SLACK_BOT_TOKEN",
    "STAGEPASS_API_TOKEN",
    "STAGEPASS_SIGNING_KEY",
)


def bounded(examples: int) -> settings:
    """So many examples, the same ones every run (derandomized), none kept between runs."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


class LiveServer(threading.Thread):
    """Stagepass (billing in TEST MODE, audio, Slack over HTTP) on 127.0.0.1 until stopped."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="stagepass-live", daemon=True)
        self.settings = settings
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.core: Core | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test by `start_and_wait`
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        stagepass = await Stagepass.build(self.settings)
        self.core = stagepass.core
        try:
            app = stagepass.http_app()
            app.state.ready = True
            served = server(app, self.settings, host="127.0.0.1", port=0)
            task = asyncio.create_task(served.serve(sockets=[self.sock]), name="uvicorn")
            await eventually(lambda: served.started or task.done(), what="uvicorn started")
            if task.done():
                await task
            self.ready.set()
            await self._stopping.wait()
            served.should_exit = True
            await task
        finally:
            await stagepass.close()

    def start_and_wait(self) -> None:
        self.start()
        assert self.ready.wait(60), "the live server did not start"
        if self.failure is not None:
            raise self.failure

    def call(self, work: Callable[[Core], Coroutine[Any, Any, T]]) -> T:
        """Run `work` with the server's core on the server's loop, and wait for it."""
        assert self._loop is not None and self.core is not None
        return asyncio.run_coroutine_threadsafe(work(self.core), self._loop).result(60)

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(30)
        self.sock.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app on SQLite, then on PostgreSQL (each database answers bad input its own way:
    an out-of-range integer, a NUL, a string past its column)."""
    data: Path = tmp_path_factory.mktemp("live") / "data"
    url, database = fresh_postgres_database() if request.param == "postgres" else (None, None)
    with pytest.MonkeyPatch.context() as patch:
        for key in _SCRUBBED:
            patch.delenv(key, raising=False)
        settings = load_settings(
            database_url=url,
            data_dir=data,
            api_token=TOKEN,
            http_port=0,
            public_url="http://stagepass.test",
            slack_bot_token="xoxb-test",
            slack_signing_secret="s" * 32,
        )
    running = LiveServer(settings)
    running.start_and_wait()
    with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        starts = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        created = http.post(
            "/api/v1/spaces",
            json={
                "host": person("alice"),
                "title": "Seeded",
                "starts_at": starts,
                "price_minor": 0,
                "currency": "usd",
                "capacity": 50,
            },
        )
        assert created.status_code == 201, created.text  # Space #1: GETs find something
    try:
        yield running
    finally:
        running.stop()
        if database is not None:
            drop_postgres_database(database)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_the_api_keeps_to_its_document(live: LiveServer, mode: GenerationMode) -> None:
    """Every operation in turn (schemathesis's pytest loader does not run on pytest 9.2,
    so the operations are walked here); every failure is reported, not only the first."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    results = list(schema.get_all_operations())
    assert not [r.err() for r in results if isinstance(r, Err)]
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 10
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @bounded(MAX_EXAMPLES)
        def exercise(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # no input to get wrong (GET /healthz)
        except Exception as exc:  # collected: one report for every operation that failed
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


# --- the web routes, which the document leaves out -------------------------------------------

#: Per route.
WEB_EXAMPLES = 30
#: What the server must never show: a traceback, its operator token, its signing key,
#: Slack's secrets (the Stripe key is unset: billing runs in TEST MODE).
_TRACEBACK = ("Traceback (most recent call last)", 'File "/')
#: A 4xx page says why: the refused pages' reason, a page's alert, or the JSON envelope.
_REASON = re.compile(r'<p[^>]* id="(?:refused-reason|error)"[^>]*>\s*([^<\s][^<]*)</p>')


@dataclass(frozen=True)
class Seeds:
    """What the web routes need to be reached at all: Spaces, a ticket, a held seat, and
    a token of every kind, each for its own route."""

    free: int  # public, free: the buyer has a ticket; the host's desk opens it
    paid: int  # public, paid: the buyer holds a seat awaiting payment; code HALF
    secret: int  # invite-only, paid: the invite is to it
    ticket: str
    invite: str
    signin: str
    session: str
    desk: str
    manage: str
    secrets: tuple[str, ...]

    @property
    def csrf(self) -> str:
        return csrf_of(self.session)

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.invite, self.signin, self.session, self.desk, self.manage)


async def _seed(core: Core) -> Seeds:
    host = Actor(Platform.DISCORD, "guild1", "webhost", "Web Host")
    bob = Actor(Platform.DISCORD, "guild1", "webbuyer", "Web Buyer")
    days = iter(range(8, 20))

    async def space(title: str, price: int, visibility: Visibility = Visibility.PUBLIC) -> int:
        draft = SpaceDraft(
            title=title,
            starts_at=core.clock.now() + timedelta(days=next(days)),
            capacity=100,
            price_minor=price,
            per_buyer_limit=5,
            visibility=visibility,
        )
        made = await core.spaces.create(host, draft)
        assert made.id is not None
        return made.id

    free = await space("Free for all", 0)
    paid = await space("Paid", 1000)
    secret = await space("Secret", 1000, Visibility.INVITE)
    await core.promos.create(host, paid, PromoDraft(code="HALF", uses=1000, percent=50))
    invite = await core.invites.create(host, secret, 1000)
    [ticket] = (await core.tickets.reserve(bob, free)).tickets
    await core.tickets.reserve(bob, paid)
    me = await core.identities.ensure(bob)
    seed = (core.settings.data_dir / "signing.key").read_text().strip()  # made on first run
    return Seeds(
        free=free,
        paid=paid,
        secret=secret,
        ticket=ticket.id,
        invite=invite.token,
        signin=core.web.link_token(me),
        session=core.web.session_for(me),
        desk=await core.host_desk.link_token(host, free),
        manage=core.my_tickets.link_token(ticket),
        secrets=(TOKEN, "s" * 32, "xoxb-test", seed),
    )


@pytest.fixture(scope="module")
def seeds(live: LiveServer) -> Seeds:
    return live.call(_seed)


@dataclass(frozen=True)
class Slot:
    """One credential or id a request carries; `good`: exactly the one its route takes."""

    value: str
    good: bool


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _flip(token: str, at: int) -> str:
    """`token` with one character changed so its bytes change: a base64url character's top
    bit (always a data bit), or the dot between payload and signature."""
    char = token[at]
    other = _B64[_B64.index(char) ^ 32] if char in _B64 else "A"
    return token[:at] + other + token[at + 1 :]


_JUNK = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", ".", "..", "%", "%ff", "\x00", "é" * 300, "A" * 1500]),
)


def _either(*choices: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of `choices`, each as likely (`st.one_of` flattens nested choices and drops
    repeats, so a branch of its own can come up once in many)."""
    return st.sampled_from(range(len(choices))).flatmap(lambda at: choices[at])


#: Characters `str.isdigit()` takes: the ASCII digits, other decimal digits (`int()` reads
#: them) and digits that are no decimal (`int("²")` fails).
_DIGITS = [chr(c) for c in range(0x3000) if chr(c).isdigit()]
_NO_DECIMAL = st.sampled_from([c for c in _DIGITS if not c.isdecimal()])
_DIGIT = _either(
    st.sampled_from("0123456789"),
    st.sampled_from([c for c in _DIGITS if c.isdecimal() and not c.isascii()]),
    _NO_DECIMAL,
    _NO_DECIMAL,
)
#: What a number field may hold: numbers, runs of digits (twice as likely: the kind that
#: broke), other spellings, junk.
_DIGIT_RUN = st.text(alphabet=_DIGIT, min_size=1, max_size=3)
_NUMBER = _either(
    st.integers(-3, 10**20).map(str),
    _DIGIT_RUN,
    _DIGIT_RUN,
    st.sampled_from(["1e3", "0x1", "1_0", " 7 ", "-0", "+1", "1.5", "½"]),
    _JUNK,
)


def _mostly(
    right: st.SearchStrategy[Slot], wrong: st.SearchStrategy[Slot]
) -> st.SearchStrategy[Slot]:
    """Three in four right: a request gets past its other guards often enough to reach
    what lies behind them."""
    return _either(right, right, right, wrong)


def _wrong_or_right(good: str, *others: str) -> st.SearchStrategy[Slot]:
    """The right value, or one that is not: another route's token, one character off,
    cut short, or junk."""
    wrong = st.one_of(
        st.sampled_from([o for o in others if o != good] or ["x"]),
        st.integers(0, max(len(good) - 1, 0)).map(lambda at: _flip(good, at) if good else "x"),
        st.integers(1, 8).map(lambda cut: good[:-cut] or "x"),
        _JUNK,
    )
    return _mostly(st.just(Slot(good, True)), wrong.map(lambda v: Slot(v, False)))


def _ids(*good: int, honest: bool, wrong: tuple[int, ...] = ()) -> st.SearchStrategy[Slot]:
    """One of the `good` ids, or (unless `honest`) another: `wrong` ones, any number, junk."""
    others = st.one_of(
        st.sampled_from([*wrong, 0]).map(str),
        st.integers(-(2**70), 2**70).filter(lambda n: n not in good).map(str),
        _JUNK,
    )
    right = st.sampled_from(good).map(lambda n: Slot(str(n), True))
    return right if honest else _mostly(right, others.map(lambda v: Slot(v, False)))


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    guards: tuple[Slot, ...]  # any of these wrong: a 4xx, never a success
    cookie: Slot | None = None
    raw: bytes | None = None  # a body that is no form at all (then `form` is not sent)
    content_type: str = "application/x-www-form-urlencoded"

    @property
    def guarded(self) -> bool:
        return any(not slot.good for slot in self.guards)


#: No cookie at all, as a guard of a route that needs one.
_NONE = Slot("", False)


def _seg(slot: Slot) -> str:
    """A path segment as sent: `.` and `..` escaped, or the client resolves them away."""
    return quote(slot.value, safe="").replace(".", "%2E") or "%20"


#: The web routes, in the order `web_requests` numbers them.
WEB_ROUTES = (
    "GET /invites/{token}",
    "POST /invites/{token}",
    "GET /signin",
    "GET /spaces/{id}/pay",
    "POST /spaces/{id}/buy",
    "GET /spaces/{id}/manage",
    "GET /spaces/{id}/manage.csv",
    "POST /spaces/{id}/manage/refund",
    "POST /spaces/{id}/manage/recordings",
    "GET /tickets/{id}",
    "POST /tickets/{id}/refund",
    "GET /tickets/{id}/replays/{n}",
)


@st.composite
def web_requests(draw: st.DrawFn, seeds: Seeds, route: int) -> WebRequest:
    """One request to the web route `WEB_ROUTES[route]`, every part of it drawn. Half of
    them carry every credential right, so the fields behind the guards are reached too."""
    honest = draw(st.booleans())
    tokens = seeds.tokens

    def pick(good: str, *others: str) -> st.SearchStrategy[Slot]:
        return st.just(Slot(good, True)) if honest else _wrong_or_right(good, *others)

    any_text = _either(st.sampled_from(["1", "2", "HALF", "bought", "refund", "/x"]), _JUNK)
    # drawn only where the route uses them: a draw that changes nothing wastes an example
    signed_in = pick(seeds.session, seeds.signin, seeds.desk)
    signed_in = signed_in if honest else st.one_of(st.none(), signed_in)
    csrf = pick(seeds.csrf, csrf_of(seeds.signin), "0" * 32)
    spaces = _ids(seeds.free, seeds.paid, honest=honest)
    if route in (0, 1):
        token = draw(pick(seeds.invite, *tokens))
        cookie = draw(signed_in)
        path = f"/invites/{_seg(token)}"
        if route == 0:
            return WebRequest("GET", path, {}, {}, (token,), cookie)
        sent = draw(csrf)
        form = {"csrf": sent.value, "code": draw(any_text)}
        request = WebRequest("POST", path, {}, form, (token, cookie or _NONE, sent), cookie)
    elif route == 2:
        token = draw(pick(seeds.signin, *tokens))
        query = {"token": token.value, "next": draw(_either(any_text, _NEXT))}
        return WebRequest("GET", "/signin", query, {}, (token,))
    elif route == 3:
        return WebRequest("GET", f"/spaces/{_seg(draw(spaces))}/pay", {}, {}, (), draw(signed_in))
    elif route == 4:
        space, cookie, sent = draw(spaces), draw(signed_in), draw(csrf)
        form = {"csrf": sent.value, "quantity": draw(_NUMBER), "code": draw(any_text)}
        slots = (space, cookie or _NONE, sent)
        request = WebRequest("POST", f"/spaces/{_seg(space)}/buy", {}, form, slots, cookie)
    elif route in (5, 6, 7, 8):
        where = draw(_ids(seeds.free, honest=honest, wrong=(seeds.paid,)))  # the desk's own
        desk = draw(pick(seeds.desk, *tokens))
        base = f"/spaces/{_seg(where)}/manage"
        if route == 5:
            query = {"token": desk.value, "refunded": draw(any_text)}
            return WebRequest("GET", base, query, {}, (where, desk))
        if route == 6:
            return WebRequest("GET", base + ".csv", {"token": desk.value}, {}, (where, desk))
        if route == 7:
            form = {"token": desk.value, "ticket": draw(_either(st.just(seeds.ticket), any_text))}
        else:
            form = {"token": desk.value, "delete": draw(_NUMBER)}
        path = base + ("/refund" if route == 7 else "/recordings")
        request = WebRequest("POST", path, {}, form, (where, desk))
    else:
        ticket, manage = draw(pick(seeds.ticket)), draw(pick(seeds.manage, *tokens))
        base = f"/tickets/{_seg(ticket)}"
        if route == 9:
            query = {"token": manage.value, "done": draw(any_text)}
            return WebRequest("GET", base, query, {}, (ticket, manage))
        if route == 11:
            number = quote(draw(_NUMBER), safe="").replace(".", "%2E") or "1"
            path = f"{base}/replays/{number}"
            return WebRequest("GET", path, {"token": manage.value}, {}, (ticket, manage))
        request = WebRequest(
            "POST", base + "/refund", {}, {"token": manage.value}, (ticket, manage)
        )
    if request.method == "POST" and draw(st.integers(0, 9)) == 0:
        raw = draw(st.binary(max_size=200) | st.just(b"csrf=\xff\xfe&token=\xc3("))
        # every form carries a guard (a CSRF value or a link's token): without it, refused
        request = replace(request, raw=raw, guards=(*request.guards, _NONE))
    kind = draw(st.sampled_from([request.content_type, "application/json", "text/plain", ""]))
    return replace(request, content_type=kind)


#: Where a sign-in link may try to send the browser next.
_NEXT = st.sampled_from(
    [
        "/",
        "/spaces/1",
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/%2F%2Fevil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/\r\nSet-Cookie: x=1",
        "\\\\evil.example",
    ]
)


def _send(http: httpx.Client, request: WebRequest) -> httpx.Response:
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    if request.cookie is not None:
        headers["Cookie"] = f"stagepass_session={quote(request.cookie.value, safe='')}"
    content = None
    if request.method == "POST":
        content = request.raw if request.raw is not None else urlencode(request.form).encode()
    return http.request(
        request.method, request.path, params=request.query, content=content, headers=headers
    )


def _says_why(response: httpx.Response) -> str:
    """The reason a refusal gives, '' when it gives none."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(response.json().get("error", {}).get("message", ""))
    found = _REASON.search(response.text)
    return found.group(1).strip() if found else ""


def _local(location: str) -> bool:
    """A redirect target on this site: a path, not `//host` (nor `/\\host`), no controls."""
    return (
        location.startswith("/")
        and location[1:2] not in ("/", "\\")
        and not any(c.isspace() or ord(c) < 32 for c in location)
    )


@pytest.mark.parametrize("route", range(len(WEB_ROUTES)), ids=WEB_ROUTES)
def test_the_web_routes_hold_against_any_input(live: LiveServer, seeds: Seeds, route: int) -> None:
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=30) as http:

        @given(request=web_requests(seeds, route))
        @bounded(WEB_EXAMPLES)
        def exercise(request: WebRequest) -> None:
            response = _send(http, request)
            said = response.text
            where = (request.method, request.path, response.status_code, said[:300])
            assert response.status_code < 500, where
            assert not any(mark in said for mark in _TRACEBACK), where
            assert not any(secret in said for secret in seeds.secrets), where
            if request.guarded:
                assert 400 <= response.status_code < 500, where
                assert _says_why(response), where
            elif response.status_code >= 400:
                assert _says_why(response), where
            if response.status_code in (302, 303, 307):
                assert _local(response.headers["location"]), where

        exercise()
