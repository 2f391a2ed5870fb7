"""The real server on 127.0.0.1 against slow and greedy clients, spoken to with raw sockets:
idle and trickling connections are closed in bounded time, a 200 MB body is refused
after a small part of it, and well-behaved requests are still answered."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from bot.http.server import Server, server
from bot.settings import Settings
from tests.http.conftest import TOKEN
from tests.waiting import eventually

#: How long a test waits for the server to do what it must; far above the timeouts set.
PATIENCE = 30.0
HUGE = 200 * 1024 * 1024


@dataclass
class Running:
    port: int
    server: Server

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def running(app: FastAPI, settings: Settings) -> AsyncIterator[Running]:
    settings.http_header_timeout = 0.5
    settings.http_body_timeout = 1.0
    settings.http_keep_alive_timeout = 0.5
    app.state.ready = True
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    served = server(app, settings, host="127.0.0.1", port=0)
    task = asyncio.create_task(served.serve(sockets=[sock]), name="uvicorn")
    await eventually(lambda: served.started or task.done(), what="uvicorn started")
    assert not task.done(), "uvicorn stopped during start-up"
    try:
        yield Running(sock.getsockname()[1], served)
    finally:
        served.should_exit = True
        await asyncio.wait_for(task, PATIENCE)
        sock.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails on no close)."""
    return await asyncio.wait_for(reader.read(), PATIENCE)


async def test_a_connection_that_sends_nothing_is_closed(running: Running) -> None:
    reader, writer = await running.connect()
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_trickled_headers_are_cut_off(running: Running) -> None:
    reader, writer = await running.connect()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: a\r\n" * 400 + b"\r\n"
    sent = 0
    for byte in request:  # a byte at a time, until the server hangs up
        writer.write(bytes([byte]))
        sent += 1
        try:
            await asyncio.wait_for(reader.read(), 0.05)
            break  # the server closed the connection
        except TimeoutError:
            continue
    assert sent < len(request), "the whole trickled request was accepted"
    writer.close()


async def test_a_trickled_body_is_cut_off(running: Running) -> None:
    reader, writer = await running.connect()
    writer.write(
        b"POST /api/v1/tickets/verify HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    sent = 0
    while sent < 1000:
        writer.write(b" ")
        sent += 1
        try:
            answer = await asyncio.wait_for(reader.read(), 0.05)
            break
        except TimeoutError:
            continue
    assert sent < 1000
    assert b" 500 " not in answer
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(running: Running) -> None:
    reader, writer = await running.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await closed_by_server(reader)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'{"status":"ok"}' in answer
    writer.close()


async def test_well_behaved_clients_are_answered(running: Running) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as client:
        for _ in range(3):  # on one keep-alive connection
            assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_200_mb_body_is_refused_after_a_small_part(running: Running, chunked: bool) -> None:
    reader, writer = await running.connect()
    framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}".encode()
    writer.write(
        b"POST /api/v1/spaces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n\r\n"
    )
    piece = b"x" * 65536
    frame = b"10000\r\n" + piece + b"\r\n" if chunked else piece
    answering = asyncio.create_task(reader.read(), name="answer")  # until the server closes
    sent = 0
    try:
        while sent < HUGE and not answering.done():
            writer.write(frame)
            await writer.drain()
            sent += len(piece)
    except (ConnectionResetError, BrokenPipeError):
        pass  # it hung up while we were still sending: what we want
    answer = await asyncio.wait_for(answering, PATIENCE)
    writer.close()
    assert sent < 32 * 1024 * 1024, f"the server read {sent} bytes of a refused body"
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"content_too_large"' in answer
