"""Capture a real browser's room offer into ``tests/audio/chromium_offer.sdp``.

Run it by hand when the browser or the room page's negotiation changes::

    .venv/bin/python -m tests.audio.capture_chromium_offer

Debian's Chromium (``make browser``), driven by Playwright, does what ``audio/static/room.js``
does: a microphone from the fake capture device, ``addTransceiver("audio", sendrecv)``,
``setLocalDescription``, wait for ICE gathering to complete, and keep ``localDescription``.
The page is served on 127.0.0.1 (a secure context) and Chromium offers its loopback
candidates only (``--allow-loopback-in-peer-connection``, no mDNS names), so nothing about
this machine's network ends up in the file. The SDP is written byte for byte, CRLF and all
(``.gitattributes`` keeps git from touching it); `tests/audio/test_offer_fuzz.py` mutates it.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from pathlib import Path

from playwright.async_api import async_playwright

from tests.audio.browsers import CHROMIUM, CHROMIUM_FLAGS

OUT = Path(__file__).with_name("chromium_offer.sdp")
PAGE = b"<!doctype html><title>offer</title>"
OFFER_JS = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const pc = new RTCPeerConnection({iceServers: []});
  const sender = pc.addTransceiver("audio", {direction: "sendrecv"}).sender;
  await sender.replaceTrack(stream.getAudioTracks()[0]);
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { resolve(); }
      });
    });
  }
  const sdp = pc.localDescription.sdp;
  pc.close();
  stream.getTracks().forEach((t) => t.stop());
  return sdp;
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def capture() -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            try:
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                sdp: str = await asyncio.wait_for(page.evaluate(OFFER_JS), 60)
            finally:
                await browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return sdp


def main() -> None:
    sdp = asyncio.run(capture())
    OUT.write_bytes(sdp.encode())
    print(f"wrote {OUT} ({len(sdp)} characters, {sdp.count(chr(13) + chr(10))} CRLF lines)")


if __name__ == "__main__":
    main()
