"""The Clerk client's own guards: a whole-call deadline and a size cap on replies.

The fake Clerk answers in one piece; these cases need a server that misbehaves at the socket
level, so a tiny one is written here.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from clerk.client import MAX_REPLY_BYTES, ClerkUnreachable, get_client
from tests.conftest import HTTPSClient
from tests.security.conftest import MARKER, bearer, body

pytestmark = pytest.mark.django_db


class RawServer:
    """Accepts connections on loopback and answers each with `reply(conn)`."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            try:
                _read_request(conn)
                self.reply(conn, self.stopped)
                # Let the client close first: closing with its bytes unread would reset it.
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except OSError:
                pass  # the client gave up, as it should

    def close(self):
        self.stopped.set()
        self.sock.close()


def _read_request(conn) -> None:
    """Read one request whole (headers and Content-Length body); its content does not matter."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)


def trickle(conn, stopped):
    payload = b'{"status": "ok"}' + b" " * 184
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
    for byte in payload:
        if stopped.wait(0.1):
            return
        conn.sendall(bytes([byte]))


def oversized(conn, stopped):
    size = MAX_REPLY_BYTES + 1024
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode())
    conn.sendall(b'{"status": "ok"' + b" " * (size - 16) + b"}")


@pytest.fixture
def raw_server(settings, request):
    server = RawServer(request.param)
    settings.CLERK_API_URL = server.url
    settings.CLERK_API_CONNECT_TIMEOUT, settings.CLERK_API_READ_TIMEOUT = 0.2, 0.5  # a short budget
    yield server
    server.close()


@pytest.mark.parametrize("raw_server", [trickle], indirect=True)
def test_a_trickling_reply_is_cut_at_the_deadline(raw_server, settings):
    started = time.monotonic()
    with pytest.raises(ClerkUnreachable):
        get_client().verify_token("any-token")
    elapsed = time.monotonic() - started
    assert elapsed < settings.CLERK_API_CONNECT_TIMEOUT + settings.CLERK_API_READ_TIMEOUT + 0.5


@pytest.mark.parametrize("raw_server", [trickle], indirect=True)
def test_a_trickling_clerk_is_503_within_budget(raw_server, settings):
    started = time.monotonic()
    response = HTTPSClient().get("/feed/products.json", headers=bearer())
    assert response.status_code == 503
    assert MARKER not in body(response)
    assert time.monotonic() - started < settings.CLERK_API_CONNECT_TIMEOUT + settings.CLERK_API_READ_TIMEOUT + 1.0


@pytest.mark.parametrize("raw_server", [oversized], indirect=True)
def test_an_oversized_reply_is_not_a_usable_answer(raw_server):
    with pytest.raises(ClerkUnreachable):
        get_client().verify_token("any-token")
