"""Types of the fast lane's C loop (audio/_lane.c)."""

import socket

LARGEST: int
"""The largest RTP packet a lane protects (its buffer, less the longest SRTP trailer)."""

class Lane:
    active: bool
    sequence: int
    @property
    def origin(self) -> int: ...
    @property
    def packets(self) -> int: ...
    @property
    def octets(self) -> int: ...
    @property
    def errors(self) -> int: ...
    def __init__(
        self,
        srtp: int,
        sock: socket.socket,
        address: bytes,
        header: bytes,
        abs_at: int,
        sequence: int,
        origin: int,
    ) -> None: ...

def send(
    lanes: list[Lane],
    payload: bytes,
    offset: int,
    abs_send_time: bytes,
    ring: tuple[int, ...] | None,
    /,
) -> tuple[int, int, int]: ...
def bind(address: int, /) -> None: ...
