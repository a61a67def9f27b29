"""A fake of Clerk's API on loopback, for the tests, the demo and the benchmarks.

It speaks the documented parts of Clerk's API (`POST /token/verify`, `DELETE` and `POST` on
`/products|/categories|/customers|/orders|/pages`, `POST /privacy/forget`) over real HTTP, so
the project's client, timeouts and error handling are exercised for real. It binds to loopback
only and is never started by the service itself. Scripted per call with `FakeClerk.behave`.

    python -m clerk.fake --port 8765 --accept demo-token
"""

from __future__ import annotations

import argparse
import ipaddress
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

OBJECT_TYPES = ("products", "categories", "customers", "orders", "pages")
# 200 replies that are not Clerk's answer: Clerk (or something in front of it) is broken.
UNUSABLE_REPLIES = {
    "malformed": b"<html>not json",
    "truncated": b'{"status": "o',
    "empty": b"",
    "not-object": b'[{"status": "ok"}]',
    "no-status": b'{"token_payload": {"sub": "fake-clerk"}}',
}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float = field(default_factory=time.time)  # when it arrived (the benchmarks' latency)


@dataclass
class FakeClerkState:
    accepted_tokens: set[str] = field(default_factory=set)
    public_key: str | None = None
    slow_seconds: float = 3.0
    calls: list[Call] = field(default_factory=list)
    refuse_ids: set[int] = field(default_factory=set)
    scripts: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_outcome(self, path: str) -> str | None:
        with self.lock:
            script = self.scripts.get(path)
            return script.popleft() if script else None


class FakeClerk:
    """A running fake: `url` is the base to put in `CLERK_API_URL`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, accepted_tokens=(), public_key=None):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("The fake Clerk binds to loopback only.")
        self.state = FakeClerkState(accepted_tokens=set(accepted_tokens), public_key=public_key)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-clerk", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeClerk:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- scripting and inspection -------------------------------------------------------------
    def behave(self, path: str, *outcomes: str) -> None:
        """Script the next calls to `path`, one outcome each, in turn: "ok", "refuse", "error500",
        "slow", "status:<code>" (an error object), "html:<code>" (an HTML page), a 200 that is not
        usable ("malformed": not JSON, "truncated", "empty", "not-object": a JSON array,
        "no-status": an object without `status`) or "redirect:<path>" (307). When the script runs
        out: a `DELETE` or `POST` of objects whose ids meet `state.refuse_ids` is refused (400,
        naming the first such id); otherwise tokens in `accepted_tokens` are ok, others refused,
        other calls ok."""
        with self.state.lock:
            self.state.scripts[path].extend(outcomes)

    def reset(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.scripts.clear()
            self.state.refuse_ids.clear()

    def calls(self, path: str | None = None, method: str | None = None) -> list[Call]:
        with self.state.lock:
            return [
                c
                for c in self.state.calls
                if (path is None or c.path == path) and (method is None or c.method == method)
            ]


class _Handler(BaseHTTPRequestHandler):
    state: FakeClerkState
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waits for
    # the client's delayed ACK of the headers (about 40 ms a call on loopback).
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_GET(self):
        self._handle("GET")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = _strip_version(parts.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        with self.state.lock:
            self.state.calls.append(Call(method, path, query, body))
        outcome = self.state.next_outcome(path)
        if outcome is None:
            outcome = self._default_outcome(method, path, query, body)
        self._answer(outcome)

    def _default_outcome(self, method, path, query, body) -> str:
        if path == "/token/verify":
            source = body if isinstance(body, dict) else {k: v[0] for k, v in query.items()}
            token_ok = source.get("token") in self.state.accepted_tokens
            key_ok = self.state.public_key is None or source.get("key") == self.state.public_key
            return "ok" if token_ok and key_ok else "refuse"
        if path.strip("/") in OBJECT_TYPES:
            refused = sorted(set(_object_ids(method, path, query, body)) & self.state.refuse_ids)
            return f"refuse-id:{refused[0]}" if refused else "ok"
        if path == "/privacy/forget":
            return "ok"
        return "status:404"

    def _answer(self, outcome: str) -> None:
        if outcome == "slow":
            time.sleep(self.state.slow_seconds)
            outcome = "ok"
        if outcome == "ok":
            self._send(200, {"status": "ok", "token_payload": {"sub": "fake-clerk"}})
        elif outcome == "refuse":
            self._send(200, {"status": "error", "type": "invalid_token", "message": "Token is not valid."})
        elif outcome == "error500":
            self._send(500, {"status": "error", "type": "server_error", "message": "Internal error"})
        elif outcome in UNUSABLE_REPLIES:
            self._send_raw(200, UNUSABLE_REPLIES[outcome])
        elif outcome.startswith("refuse-id:"):
            object_id = outcome.split(":", 1)[1]
            self._send(400, {"status": "error", "type": "invalid_object", "message": f"Object {object_id} is invalid."})
        elif outcome.startswith("status:"):
            code = int(outcome.split(":", 1)[1])
            self._send(code, {"status": "error", "type": "http_error", "message": f"HTTP {code}"})
        elif outcome.startswith("html:"):
            self._send_raw(int(outcome.split(":", 1)[1]), b"<html><body>Bad gateway</body></html>", "text/html")
        elif outcome.startswith("redirect:"):
            self._send_raw(307, b"", headers={"Location": outcome.split(":", 1)[1]})
        else:
            raise ValueError(f"unknown fake Clerk outcome {outcome!r}")

    def _send(self, status: int, payload: dict) -> None:
        self._send_raw(status, orjson.dumps(payload))

    def _send_raw(self, status: int, data: bytes, content_type: str = "application/json", headers=None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a "slow" reply): that is the point of the test


def _object_ids(method: str, path: str, query: dict[str, list[str]], body: Any) -> list[int]:
    """The ids a `DELETE` (query: a JSON list) or `POST` (body: objects) of objects names."""
    name = path.strip("/")
    try:
        if method == "DELETE":
            return [int(i) for i in orjson.loads(query[name][0])]
        if method == "POST" and isinstance(body, dict):
            return [int(o["id"]) for o in body[name]]
    except (KeyError, IndexError, TypeError, ValueError, orjson.JSONDecodeError):
        pass
    return []


def _strip_version(path: str) -> str:
    """`/v2/token/verify` and `/token/verify` are the same call."""
    if path.startswith("/v2/"):
        return path[3:]
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Clerk API on loopback, for local demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--accept", action="append", default=[], help="a token to accept (repeatable)")
    args = parser.parse_args()
    fake = FakeClerk(host=args.host, port=args.port, accepted_tokens=args.accept)
    print(f"fake Clerk listening on {fake.url}", flush=True)
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
