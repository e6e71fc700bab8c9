"""Capture the raw TLS ClientHello real headless Chromium sends, for the two kinds of
connection htx-web cares about: a page load and a WebSocket opened by that page.

    python tools/chrome_capture.py --out tests/vectors/chrome156     (``make chrome-capture``)

Two loopback listeners read the client's first handshake message off the socket before any
TLS library sees it. The page port then relays the connection to a Python ``ssl`` HTTPS
server whose page opens ``new WebSocket("wss://HOST:WS_PORT/ws")`` three times, one after
the other; the WebSocket port records each hello and closes (no handshake completes there,
so no session is resumed and every WebSocket hello is a full one). Run once with the host
``localhost`` (SNI sent) and once with ``127.0.0.1`` (an IP literal: no SNI).

Writes ``page_<host>.bin`` and ``ws_<host>_<i>.bin`` (the exact record bytes), ``meta.json``
(Chromium version, command line, UTC date, SHA-256 and JA4/JA3N of each) and ``README.md``.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile

from betanet.htx.tls import write_self_signed
from betanet.tls.clienthello import hello_bytes_needed, parse_client_hello
from betanet.tls.fingerprint import fingerprints
from betanet.tools.flows import splice

WS_COUNT = 3
PAGE = """<!doctype html><title>capture</title><p>capture</p><script>
let n = 0;
function next() {{
  if (n++ >= {count}) return;
  const ws = new WebSocket("wss://{host}:{port}/ws");
  ws.onerror = ws.onclose = () => setTimeout(next, 200);
}}
next();
</script>
"""


async def _read_hello(reader) -> tuple[bytes, bytes]:
    buf = bytearray()
    while not (n := hello_bytes_needed(buf)):
        chunk = await reader.read(65536)
        if not chunk:
            raise EOFError("closed before a whole ClientHello")
        buf += chunk
    return bytes(buf[:n]), bytes(buf)


class Capture:
    def __init__(self, host: str, certfile: str, keyfile: str) -> None:
        self.host = host
        self.page_hellos: list[bytes] = []
        self.ws_hellos: list[bytes] = []
        self.done = asyncio.Event()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.load_cert_chain(certfile, keyfile)
        self.ctx = ctx

    async def start(self) -> None:
        self.backend = await asyncio.start_server(self._http, "127.0.0.1", 0, ssl=self.ctx)
        self.page = await asyncio.start_server(self._page, "127.0.0.1", 0)
        self.ws = await asyncio.start_server(self._ws, "127.0.0.1", 0)
        self.page_port = self.page.sockets[0].getsockname()[1]
        self.ws_port = self.ws.sockets[0].getsockname()[1]
        self.backend_port = self.backend.sockets[0].getsockname()[1]

    def _check(self) -> None:
        if self.page_hellos and len(self.ws_hellos) >= WS_COUNT:
            self.done.set()

    async def _http(self, reader, writer) -> None:
        body = PAGE.format(count=WS_COUNT, host=self.host, port=self.ws_port).encode()
        try:
            while (head := await reader.readuntil(b"\r\n\r\n")):
                ok = head.startswith(b"GET / ")
                out = body if ok else b"not found"
                writer.write(b"HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                             % (b"200 OK" if ok else b"404 Not Found", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _page(self, reader, writer) -> None:
        try:
            hello, buf = await _read_hello(reader)
        except (EOFError, ConnectionError):
            writer.close()
            return
        self.page_hellos.append(hello)
        self._check()
        ur, uw = await asyncio.open_connection("127.0.0.1", self.backend_port)
        uw.write(buf)
        await splice((reader, writer), (ur, uw))

    async def _ws(self, reader, writer) -> None:
        try:
            hello, _ = await _read_hello(reader)
            self.ws_hellos.append(hello)
            self._check()
        except (EOFError, ConnectionError):
            pass
        writer.close()

    def close(self) -> None:
        for s in (self.page, self.ws, self.backend):
            s.close()


def chromium_command(binary: str, url: str, profile: str) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--ignore-certificate-errors", "--disable-gpu",
            "--no-first-run", f"--user-data-dir={profile}", url]


async def capture(binary: str, host: str, certs: tuple[str, str], timeout: float) -> tuple[Capture, list[str]]:
    cap = Capture(host, *certs)
    await cap.start()
    with tempfile.TemporaryDirectory(prefix="chrome-profile-") as profile:
        cmd = chromium_command(binary, f"https://{host}:{cap.page_port}/", profile)
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                    start_new_session=True)
        try:
            await asyncio.wait_for(cap.done.wait(), timeout)
        finally:
            _kill_group(proc.pid)
            await proc.wait()
            cap.close()
    return cap, cmd


def _kill_group(pid: int) -> None:
    import signal
    try:
        os.killpg(pid, signal.SIGTERM)           # chromium's own process group (start_new_session)
    except ProcessLookupError:
        pass


def describe(raw: bytes) -> dict:
    fp = fingerprints(parse_client_hello(raw))
    return {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw), "ja4": fp.ja4, "ja4_r": fp.ja4_r,
            "ja4_o": fp.ja4_o, "ja3n": fp.ja3n, "ja3": fp.ja3}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory for the captures (created)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args(argv)
    version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    os.makedirs(args.out, exist_ok=True)
    meta = {"chromium": version, "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "tool": "tools/chrome_capture.py", "captures": {}}
    with tempfile.TemporaryDirectory() as d:
        cert, key = write_self_signed(d, ["localhost", "127.0.0.1"])
        for host in ("localhost", "127.0.0.1"):
            cap, cmd = asyncio.run(capture(args.chromium, host, (str(cert), str(key)), args.timeout))
            meta.setdefault("command_lines", []).append(" ".join(
                c if not c.startswith("--user-data-dir=") else "--user-data-dir=<fresh temporary directory>"
                for c in cmd))
            files = {f"page_{host}.bin": cap.page_hellos[0]}
            files.update({f"ws_{host}_{i + 1}.bin": h for i, h in enumerate(cap.ws_hellos[:WS_COUNT])})
            for name, raw in files.items():
                with open(os.path.join(args.out, name), "wb") as f:
                    f.write(raw)
                meta["captures"][name] = describe(raw)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme(meta))
    for name, m in meta["captures"].items():
        print(f"{name:28} {m['ja4']}  ja3n {m['ja3n']}")
    return 0


def readme(meta: dict) -> str:
    rows = "\n".join(f"| `{n}` | {m['bytes']} | `{m['ja4']}` | `{m['ja3n']}` |"
                     for n, m in sorted(meta["captures"].items()))
    cmds = "\n".join(f"    {c}" for c in meta["command_lines"])
    return f"""# Real Chromium's ClientHello, captured

{meta['chromium']} (Debian 12 package `chromium`), headless, on {meta['date_utc']} (UTC),
captured by `tools/chrome_capture.py` (`make chrome-capture` regenerates this folder). Each
`.bin` file is the exact TLS record bytes of one ClientHello, read off a loopback socket before
any TLS library saw them.

- `page_<host>.bin`: the page load of `https://<host>:PORT/` (Python `ssl` behind the capture
  relay serves the page).
- `ws_<host>_<i>.bin`: the three `new WebSocket("wss://<host>:PORT2/ws")` connections that page
  opens one after the other (the listener closes each after the hello, so none resumes a session).
- `localhost` sends SNI (JA4 `d`); `127.0.0.1` is an IP literal, so no SNI (JA4 `i`).

Command lines (the user-data directory is a fresh temporary one each run):

{cmds}

| file | bytes | JA4 | JA3N |
|---|---|---|---|
{rows}

`meta.json` has SHA-256, JA4_r, JA4_o and JA3 of each. `tests/test_tls_chrome_capture.py`
checks these values against `betanet.tls.fingerprint`, the independent `ja4plus`, and curl_cffi's
live ClientHello.
"""


if __name__ == "__main__":
    sys.exit(main())
