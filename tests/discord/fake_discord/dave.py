"""DAVE's group key exchange, driven the way Discord's voice gateway drives it.

Discord's voice gateway is the MLS delivery service and the group's one *external sender*:
it gives every member its credential (opcode 25), turns each member's key package (26)
into an Add proposal that it signs itself (27), announces the first commit of an epoch
(29) with a welcome for each new member (30), proposes a Remove when a member leaves, and
executes a transition (22) once every member is ready for it (23). `DaveGateway` does that
for a fake voice server. `DaveMember` is one fake Discord user's client side: it does with
opcodes 21-31 what discord.py's ``DiscordVoiceWebSocket`` does, on a real
``davey.DaveSession``.

Only the external sender's share of MLS (RFC 9420) is written here: the ExternalSender
struct, and Add and Remove proposals as PublicMessages signed with ECDSA P-256 over
FramedContentTBS; plus just enough parsing to read a key package's user id and a commit's
epoch and length. Everything else is davey (openmls). tests/bridge/test_dave.py checks the
encoding against proposals a real Discord voice server sent.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import davey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

logger = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 1

# Voice gateway opcodes of the DAVE protocol.
CLIENTS_CONNECT: Final = 11
PREPARE_TRANSITION, EXECUTE_TRANSITION, TRANSITION_READY, PREPARE_EPOCH = 21, 22, 23, 24
EXTERNAL_SENDER, KEY_PACKAGE, PROPOSALS, COMMIT_WELCOME = 25, 26, 27, 28
ANNOUNCE_COMMIT, WELCOME, INVALID_COMMIT_WELCOME = 29, 30, 31
APPEND, REVOKE = 0, 1

# RFC 9420 code points.
_MLS10, _PUBLIC_MESSAGE = 1, 1
_MEMBER, _EXTERNAL = 1, 2
_PROPOSAL, _COMMIT = 2, 3
_ADD, _REMOVE = 1, 3
_BY_REFERENCE = 2
_BASIC = 1
_SIGN_LABEL: Final = b"MLS 1.0 FramedContentTBS"


class MlsError(ValueError):
    """Bytes that are not the MLS structure expected."""


# -- TLS presentation language with MLS variable-length vectors (RFC 9420 §2.1.2) --------


def varint(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return struct.pack(">H", n | 0x4000)
    if n < 1 << 30:
        return struct.pack(">I", n | 0x8000_0000)
    raise MlsError("vector too long")


def opaque(data: bytes) -> bytes:
    """``opaque data<V>``: a length-prefixed byte vector."""
    return varint(len(data)) + data


def sign_content(tbs: bytes) -> bytes:
    """What ``SignWithLabel(key, "FramedContentTBS", tbs)`` signs (RFC 9420 §5.1.2)."""
    return opaque(_SIGN_LABEL) + opaque(tbs)


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MlsError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def opaque(self) -> bytes:
        if self.pos >= len(self.data):
            raise MlsError("truncated")
        size = 1 << (self.data[self.pos] >> 6)
        if size == 8:
            raise MlsError("invalid vector length")
        length = self.uint(size) & ((1 << (8 * size - 2)) - 1)
        return self.take(length)

    @property
    def rest(self) -> bytes:
        return self.data[self.pos :]

    def leaf_node(self) -> bytes:
        """Skip a LeafNode; returns its basic credential's identity."""
        self.opaque()  # encryption key
        self.opaque()  # signature key
        if self.uint(2) != _BASIC:
            raise MlsError("DAVE allows basic credentials only")
        identity = self.opaque()
        for _ in range(5):  # capabilities: versions, suites, extensions, proposals, credentials
            self.opaque()
        source = self.uint(1)
        if source == 1:  # key_package: lifetime
            self.take(16)
        elif source == 3:  # commit: parent hash
            self.opaque()
        self.opaque()  # extensions
        self.opaque()  # signature
        return identity

    def key_package(self) -> int:
        """Skip a KeyPackage; returns the Discord user id of its credential."""
        self.take(4)  # version, cipher suite
        self.opaque()  # init key
        identity = self.leaf_node()
        self.opaque()  # extensions
        self.opaque()  # signature
        if len(identity) != 8:
            raise MlsError("a DAVE identity is a 64-bit user id")
        return int.from_bytes(identity, "big")


@dataclass(frozen=True, slots=True)
class Commit:
    group_id: bytes
    epoch: int
    leaf: int
    references: int
    message: bytes


def read_commit(reader: Reader) -> Commit:
    """One MLSMessage carrying a member's Commit as a PublicMessage (what DAVE requires)."""
    start = reader.pos
    if (reader.uint(2), reader.uint(2)) != (_MLS10, _PUBLIC_MESSAGE):
        raise MlsError("a DAVE commit is an MLS 1.0 PublicMessage")
    group_id, epoch = reader.opaque(), reader.uint(8)
    if reader.uint(1) != _MEMBER:
        raise MlsError("commits come from members")
    leaf = reader.uint(4)
    reader.opaque()  # authenticated data
    if reader.uint(1) != _COMMIT:
        raise MlsError("not a commit")
    proposals = Reader(reader.opaque())
    references = 0
    while proposals.rest:
        if proposals.uint(1) != _BY_REFERENCE:
            raise MlsError("DAVE commits reference the gateway's proposals, never inline")
        proposals.opaque()
        references += 1
    if reader.uint(1):  # optional<UpdatePath>
        reader.leaf_node()
        reader.opaque()  # path nodes
    reader.opaque()  # signature
    reader.opaque()  # confirmation tag
    reader.opaque()  # membership tag
    return Commit(group_id, epoch, leaf, references, reader.data[start : reader.pos])


# -- the external sender -------------------------------------------------------------------


class ExternalSender:
    """The voice gateway's MLS identity: a P-256 key and a basic credential."""

    def __init__(self, identity: bytes = b"\0") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        public = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.package = opaque(public) + struct.pack(">H", _BASIC) + opaque(identity)
        """The ExternalSender struct, as opcode 25 carries it."""

    def add(self, group_id: bytes, epoch: int, key_package: bytes) -> bytes:
        return self._proposal(group_id, epoch, struct.pack(">H", _ADD) + key_package)

    def remove(self, group_id: bytes, epoch: int, leaf: int) -> bytes:
        return self._proposal(group_id, epoch, struct.pack(">HI", _REMOVE, leaf))

    def _proposal(self, group_id: bytes, epoch: int, proposal: bytes) -> bytes:
        header = struct.pack(">HH", _MLS10, _PUBLIC_MESSAGE)
        content = (
            opaque(group_id)
            + struct.pack(">QBI", epoch, _EXTERNAL, 0)  # sender: external sender #0
            + opaque(b"")  # authenticated data
            + bytes([_PROPOSAL])
            + proposal
        )
        signature = self._key.sign(sign_content(header + content), ec.ECDSA(hashes.SHA256()))
        return header + content + opaque(signature)  # external senders carry no membership tag


# -- the voice gateway's side ---------------------------------------------------------------


class DaveClient(Protocol):
    """One member's connection, as the gateway sees it."""

    @property
    def user_id(self) -> int: ...

    async def send_json(self, op: int, data: dict[str, Any]) -> None: ...

    async def send_binary(self, op: int, payload: bytes) -> None: ...


Change = tuple[Literal["add", "remove"], int]


class DaveGateway:
    """The DAVE half of one voice channel's gateway (delivery service + external sender).

    Messages are handled one at a time in arrival order, like a real server's event loop:
    a member answering from inside a broadcast is queued, not nested. Errors in handling
    are kept in `errors` (a test asserts it stays empty) rather than raised into whichever
    connection happened to be draining the queue.
    """

    def __init__(self, channel_id: int) -> None:
        self.group_id = channel_id.to_bytes(8, "big")
        self.sender = ExternalSender()
        self.clients: dict[int, DaveClient] = {}
        self.leaves: list[int | None] = []
        """User id at each leaf of the established group (None: a blank leaf)."""
        self.epoch = 0
        """The established group's epoch; 0 while there is none."""
        self.commits: list[tuple[int, int]] = []
        """``(committer, new epoch)`` of every commit announced."""
        self.executed: list[int] = []
        self.invalid: list[tuple[int, int]] = []
        self.ignored_commits = 0
        self.errors: list[BaseException] = []
        self._key_packages: dict[int, bytes] = {}
        self._sent: dict[int, list[Change]] = {}
        self._ready: dict[int, set[int]] = {}
        self._transitions = itertools.count(1)
        self._inbox: deque[Callable[[], Awaitable[None]]] = deque()
        self._busy = False

    @property
    def members(self) -> list[int]:
        return [user for user in self.leaves if user is not None]

    def leaf_of(self, user_id: int) -> int | None:
        return self.leaves.index(user_id) if user_id in self.leaves else None

    # -- what connections call -------------------------------------------------------------

    async def connect(self, client: DaveClient) -> None:
        """``client`` selected its protocol with DAVE on: it gets the external sender."""
        await self._submit(lambda: self._connect(client))

    async def reattach(self, client: DaveClient) -> None:
        """A resumed voice websocket: same member, same group state, new connection."""

        async def swap() -> None:
            self.clients[client.user_id] = client

        await self._submit(swap)

    async def leave(self, user_id: int) -> None:
        await self._submit(lambda: self._depart(user_id))

    async def receive(self, user_id: int, op: int, payload: bytes | dict[str, Any]) -> None:
        """One message from a member: binary opcodes as bytes, JSON ones as their ``d``."""
        await self._submit(lambda: self._receive(user_id, op, payload))

    # -- serial handling ---------------------------------------------------------------

    async def _submit(self, action: Callable[[], Awaitable[None]]) -> None:
        self._inbox.append(action)
        if self._busy:
            return
        self._busy = True
        try:
            while self._inbox:
                try:
                    await self._inbox.popleft()()
                except Exception as exc:
                    logger.exception("fake DAVE gateway failed")
                    self.errors.append(exc)
        finally:
            self._busy = False

    async def _receive(self, user_id: int, op: int, payload: bytes | dict[str, Any]) -> None:
        if op == KEY_PACKAGE and isinstance(payload, bytes):
            await self._key_package(user_id, payload)
        elif op == COMMIT_WELCOME and isinstance(payload, bytes):
            await self._commit_welcome(user_id, payload)
        elif op == TRANSITION_READY and isinstance(payload, dict):
            await self._transition_ready(user_id, int(payload["transition_id"]))
        elif op == INVALID_COMMIT_WELCOME and isinstance(payload, dict):
            self.invalid.append((user_id, int(payload["transition_id"])))
            await self._propose_removal(user_id)
        else:
            raise MlsError(f"unexpected DAVE opcode {op} from {user_id}")

    async def _connect(self, client: DaveClient) -> None:
        user_id = client.user_id
        if user_id in self.clients:  # a fresh session of someone still known: the old one left
            await self._depart(user_id)
        self.clients[user_id] = client
        await client.send_binary(EXTERNAL_SENDER, self.sender.package)

    async def _depart(self, user_id: int) -> None:
        self.clients.pop(user_id, None)
        self._key_packages.pop(user_id, None)
        self._sent.pop(user_id, None)
        for waiting in self._ready.values():
            waiting.discard(user_id)
        if user_id not in self.members:
            return
        remaining = [u for u in self.members if u != user_id and u in self.clients]
        if len(remaining) <= 1:
            await self._reset(remaining)
        else:
            await self._propose_removal(user_id)

    async def _reset(self, remaining: list[int]) -> None:
        """Sole member reset: nobody keeps control of an established group."""
        self.leaves, self.epoch, self._sent = [], 0, {}
        for user_id in remaining:
            client = self.clients[user_id]
            await client.send_json(
                PREPARE_EPOCH, {"protocol_version": PROTOCOL_VERSION, "epoch": 1}
            )
            await client.send_json(
                PREPARE_TRANSITION, {"protocol_version": PROTOCOL_VERSION, "transition_id": 0}
            )

    async def _key_package(self, user_id: int, package: bytes) -> None:
        reader = Reader(package)
        if reader.key_package() != user_id or reader.rest:
            raise MlsError(f"key package of {user_id} is not theirs")
        if user_id in self.members:
            await self._propose_removal(user_id)  # re-added with a new key package
        if self.epoch:
            await self._propose(("add", user_id), package, self._connected_members())
        else:  # no group yet: every pending member adds every other one to its local group
            for other, theirs in self._key_packages.items():
                if other != user_id and other in self.clients:
                    await self._propose(("add", other), theirs, [user_id])
            pending = [u for u in self.clients if u != user_id]
            await self._propose(("add", user_id), package, pending)
        self._key_packages[user_id] = package

    async def _propose_removal(self, user_id: int) -> None:
        leaf = self.leaf_of(user_id)
        if not self.epoch or leaf is None:
            return
        targets = [u for u in self._connected_members() if u != user_id]
        if any(("remove", user_id) in self._sent.get(u, []) for u in targets):
            return
        message = self.sender.remove(self.group_id, self.epoch, leaf)
        await self._send_proposal(("remove", user_id), message, targets)

    async def _propose(self, change: Change, package: bytes, targets: list[int]) -> None:
        message = self.sender.add(self.group_id, self.epoch, package)
        await self._send_proposal(change, message, targets)

    async def _send_proposal(self, change: Change, message: bytes, targets: list[int]) -> None:
        for user_id in targets:
            self._sent.setdefault(user_id, []).append(change)
            await self.clients[user_id].send_binary(PROPOSALS, bytes([APPEND]) + opaque(message))

    def _connected_members(self) -> list[int]:
        return [u for u in self.members if u in self.clients]

    async def _commit_welcome(self, user_id: int, data: bytes) -> None:
        reader = Reader(data)
        commit = read_commit(reader)
        welcome = reader.rest or None
        changes = self._sent.get(user_id, [])
        committer_leaf = self.leaf_of(user_id) if self.epoch else 0
        adds = [u for kind, u in changes if kind == "add"]
        if (
            commit.group_id != self.group_id
            or commit.epoch != self.epoch  # the first commit of an epoch wins
            or commit.leaf != committer_leaf
            or commit.references != len(changes)
            or (adds and welcome is None)
        ):
            self.ignored_commits += 1
            return
        before = self._connected_members() if self.epoch else [user_id]
        leaves: list[int | None] = list(self.leaves) if self.epoch else [user_id]
        removed = [u for kind, u in changes if kind == "remove"]
        for gone in removed:
            leaves[leaves.index(gone)] = None
        for new in adds:
            blank = next((i for i, u in enumerate(leaves) if u is None), None)
            if blank is None:
                leaves.append(new)
            else:
                leaves[blank] = new
        while leaves and leaves[-1] is None:
            leaves.pop()
        self.leaves, self.epoch, self._sent = leaves, commit.epoch + 1, {}
        self.commits.append((user_id, self.epoch))
        transition = next(self._transitions)
        self._ready[transition] = set(self._connected_members())
        header = struct.pack(">H", transition)
        for member in before:
            if member not in removed:
                await self.clients[member].send_binary(ANNOUNCE_COMMIT, header + commit.message)
        for new in adds:
            self._key_packages.pop(new, None)
            if new in self.clients and welcome is not None:
                await self.clients[new].send_binary(WELCOME, header + welcome)
        # Proposals of the old epoch are void: propose again what is still wanted.
        for waiting, package in list(self._key_packages.items()):
            if waiting in self.clients and waiting not in self.members:
                await self._propose(("add", waiting), package, self._connected_members())
        for stale in [u for u in self.members if u not in self.clients]:
            await self._propose_removal(stale)

    async def _transition_ready(self, user_id: int, transition: int) -> None:
        waiting = self._ready.get(transition)
        if waiting is None:
            return
        waiting.discard(user_id)
        if not waiting:
            del self._ready[transition]
            self.executed.append(transition)
            for member in self._connected_members():
                await self.clients[member].send_json(
                    EXECUTE_TRANSITION, {"transition_id": transition}
                )


# -- a fake Discord user's client side -------------------------------------------------------


class DaveMember:
    """A Discord client's DAVE handling, in process: what discord.py 2.7's voice websocket
    does with opcodes 21-31 (``received_message`` / ``received_binary_message``)."""

    def __init__(self, gateway: DaveGateway, user_id: int) -> None:
        self._gateway = gateway
        self._user_id = user_id
        self._channel_id = int.from_bytes(gateway.group_id, "big")
        self.protocol_version = PROTOCOL_VERSION
        self.session = davey.DaveSession(PROTOCOL_VERSION, user_id, self._channel_id)
        self.pending: dict[int, int] = {}
        self.executed: list[int] = []
        self.recoveries = 0

    @property
    def user_id(self) -> int:
        return self._user_id

    @property
    def ready(self) -> bool:
        return bool(self.session.ready)

    async def join(self) -> None:
        """SELECT_PROTOCOL answered with DAVE: connect, then send a key package."""
        await self._gateway.connect(self)
        await self._send_key_package()

    async def leave(self) -> None:
        await self._gateway.leave(self._user_id)

    def encrypt(self, opus: bytes) -> bytes:
        return bytes(self.session.encrypt_opus(opus))

    def decrypt(self, user_id: int, payload: bytes) -> bytes:
        return bytes(self.session.decrypt(user_id, davey.MediaType.audio, payload))

    async def _send_key_package(self) -> None:
        package = self.session.get_serialized_key_package()
        await self._gateway.receive(self._user_id, KEY_PACKAGE, package)

    async def _ready_for(self, transition: int) -> None:
        await self._gateway.receive(self._user_id, TRANSITION_READY, {"transition_id": transition})

    async def send_json(self, op: int, data: dict[str, Any]) -> None:
        if op == PREPARE_TRANSITION:
            transition = int(data["transition_id"])
            self.pending[transition] = int(data["protocol_version"])
            if transition == 0:
                self._execute(transition)
            else:
                await self._ready_for(transition)
        elif op == EXECUTE_TRANSITION:
            self._execute(int(data["transition_id"]))
        elif op == PREPARE_EPOCH and int(data["epoch"]) == 1:
            self.protocol_version = int(data["protocol_version"])
            self.session.reinit(self.protocol_version, self._user_id, self._channel_id)
            await self._send_key_package()

    async def send_binary(self, op: int, payload: bytes) -> None:
        if op == EXTERNAL_SENDER:
            self.session.set_external_sender(payload)
        elif op == PROPOSALS:
            kind = davey.ProposalsOperationType.append
            if payload[0] == REVOKE:
                kind = davey.ProposalsOperationType.revoke
            result = self.session.process_proposals(kind, payload[1:])
            if result is not None:
                await self._gateway.receive(
                    self._user_id, COMMIT_WELCOME, result.commit + (result.welcome or b"")
                )
        elif op in (ANNOUNCE_COMMIT, WELCOME):
            (transition,) = struct.unpack_from(">H", payload)
            try:
                if op == ANNOUNCE_COMMIT:
                    self.session.process_commit(payload[2:])
                else:
                    self.session.process_welcome(payload[2:])
            except Exception:
                self.recoveries += 1
                await self._gateway.receive(
                    self._user_id, INVALID_COMMIT_WELCOME, {"transition_id": transition}
                )
                self.session.reinit(self.protocol_version, self._user_id, self._channel_id)
                await self._send_key_package()
                return
            if transition:
                self.pending[transition] = self.protocol_version
                await self._ready_for(transition)

    def _execute(self, transition: int) -> None:
        if self.pending.pop(transition, None) is not None:
            self.executed.append(transition)
