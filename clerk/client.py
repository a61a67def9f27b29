"""One pooled client for Clerk's API (`get_client()`), with short timeouts; it imports no app
and never logs a token, a key or a request body.

Every call ends in one of three ways, decided by `judge_reply()` alone: a parsed
`{"status": "ok", …}` reply on a 2xx, `ClerkRefused` (Clerk answered and said no: a usable reply
whose `status` is not "ok", or a 4xx other than 408/429), or `ClerkUnreachable` (Clerk is down or
broken: timeout, connection error, 408, 429, 5xx, a redirect, or a 2xx that is not a JSON object
with a string `status`). Callers decide what each means for them; only an explicit "ok" ever
counts as success (fail closed). Reasons: docs/security.md, "Replies from Clerk".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

logger = logging.getLogger(__name__)

USER_AGENT = "clerkfeeds/1.0"
# Clerk's replies are small JSON objects; anything far larger is not an answer we can use.
MAX_REPLY_BYTES = 1 << 20
# Clerk is down, overloaded or asks us to wait: the same call may succeed later.
TRANSIENT_STATUSES = frozenset({408, 429})
# How much of Clerk's own `message` a refusal keeps (it reaches the outbox's `last_error`).
MESSAGE_MAX_CHARS = 200


class ClerkError(Exception):
    """Base of the client's failures."""


class ClerkRefused(ClerkError):
    """Clerk answered and the answer was not an explicit success."""

    def __init__(
        self, message: str, *, status: int | None = None, error_type: str | None = None, reason: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.reason = reason  # Clerk's own `message`, cut short: kept in the outbox, never logged


class ClerkUnreachable(ClerkError):
    """No usable answer: timeout, connection failure, 408, 429, 5xx, a redirect, an unusable 2xx."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ClerkClient:
    def __init__(
        self,
        *,
        base_url: str,
        public_key: str,
        private_key: str,
        connect_timeout: float,
        read_timeout: float,
    ):
        self.base_url = base_url.rstrip("/")
        self.public_key = public_key
        self.private_key = private_key
        self.timeout = (connect_timeout, read_timeout)
        self.last_status: int | None = None  # the HTTP status of the last reply (the outbox's attempts)
        self.session = requests.Session()
        # No retries here: the caller knows whether a retry is safe and how long it may wait.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    # --- the calls ---------------------------------------------------------------------------
    def verify_token(self, token: str) -> dict[str, Any]:
        """`POST /token/verify` with `{"token", "key"}`; the reply on an explicit "ok"."""
        return self._call("POST", "/token/verify", json={"token": token, "key": self.public_key})

    def delete(self, object_type: str, ids: list[int]) -> dict[str, Any]:
        """`DELETE /<type>` with the ids as a JSON-encoded list in the type's query parameter."""
        params = {
            "key": self.public_key,
            "private_key": self.private_key,
            object_type: orjson.dumps(list(ids)).decode(),
        }
        return self._call("DELETE", f"/{object_type}", params=params)

    def upsert(self, object_type: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
        """`POST /<type>` with `{"key", "private_key", "<type>": [objects]}`."""
        body = {"key": self.public_key, "private_key": self.private_key, object_type: objects}
        return self._call("POST", f"/{object_type}", json=body)

    def upsert_encoded(self, object_type: str, objects: list[bytes]) -> dict[str, Any]:
        """`upsert` of objects already encoded as JSON (a push sends the feed's own bytes)."""
        head = orjson.dumps({"key": self.public_key, "private_key": self.private_key})
        body = head[:-1] + b"," + orjson.dumps(object_type) + b":[" + b",".join(objects) + b"]}"
        return self._call("POST", f"/{object_type}", data=body)

    def forget(self, *, email: str | None = None, customer: int | None = None) -> dict[str, Any]:
        """`POST /privacy/forget`: Clerk forgets the person and anonymises their orders."""
        if (email is None) == (customer is None):
            raise ValueError("forget() takes exactly one of email or customer")
        body: dict[str, Any] = {"key": self.public_key, "private_key": self.private_key}
        if email is not None:
            body["email"] = email
        else:
            body["customer"] = customer
        return self._call("POST", "/privacy/forget", json=body)

    # --- transport ---------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None, data: bytes | None = None
    ) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        self.last_status = None
        if json is not None:
            data = orjson.dumps(json)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        # requests' read timeout bounds each socket read, not the reply: a server that trickles
        # bytes could hold the caller for ever. The whole call gets connect + read timeout.
        deadline = time.monotonic() + sum(self.timeout)
        try:
            # A redirect is not Clerk's answer, and following one would send the token or the
            # private key to wherever it points.
            with self.session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            ) as response:
                status = self.last_status = response.status_code
                retry_after = _retry_after(response)
                # A transient status is judged on its status alone: its body is not read.
                content = None
                if not _transient(status):
                    content = _read_reply(response, deadline=deadline, what=f"{method} {path}")
        except requests.Timeout as exc:
            raise ClerkUnreachable(f"Clerk did not answer {method} {path} in time") from exc
        except requests.RequestException as exc:
            raise ClerkUnreachable(f"Clerk could not be reached for {method} {path}: {type(exc).__name__}") from exc
        return judge_reply(status=status, content=content, retry_after=retry_after, what=f"{method} {path}")


def judge_reply(*, status: int, content: bytes | None, retry_after: float | None = None, what: str) -> dict[str, Any]:
    """Clerk's reply as a success (the parsed object), or `ClerkRefused`, or `ClerkUnreachable`.

    The one place that decides (module docstring): `content` is the body, None when it was too
    large or not read. A reply is usable only as a JSON object with a string `status`.
    """
    if _transient(status) or 300 <= status < 400:
        raise ClerkUnreachable(f"Clerk answered {what} with HTTP {status}", status=status, retry_after=retry_after)
    body = _usable(content)
    if body is None and not 400 <= status < 500:
        raise ClerkUnreachable(
            f"Clerk's reply to {what} (HTTP {status}) is not a JSON object with a status", status=status
        )
    if 200 <= status < 300 and body["status"] == "ok":
        return body
    error_type = body.get("type") if body is not None else None
    error_type = str(error_type)[:MESSAGE_MAX_CHARS] if error_type else None
    reason = body.get("message") if body is not None else None
    reason = str(reason)[:MESSAGE_MAX_CHARS] if reason else None
    raise ClerkRefused(
        f"Clerk refused {what} (HTTP {status}, {error_type or 'no explicit ok'})" + (f": {reason}" if reason else ""),
        status=status,
        error_type=error_type,
        reason=reason,
    )


def _transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status >= 500


def _usable(content: bytes | None) -> dict[str, Any] | None:
    """The body as a JSON object with a string `status`, or None when it is not one."""
    if content is None:
        return None
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return None
    return body


def _read_reply(response: requests.Response, *, deadline: float, what: str) -> bytes | None:
    """The reply's body, within the call's deadline; None past `MAX_REPLY_BYTES` (not usable)."""
    content = bytearray()
    for chunk in _chunks(response):
        content += chunk
        if len(content) > MAX_REPLY_BYTES:
            return None
        if time.monotonic() > deadline:
            raise ClerkUnreachable(f"Clerk did not finish its reply to {what} in time", status=response.status_code)
    return bytes(content)


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: `read1` returns what the socket has (iter_content would wait for a
    full chunk), so a trickling server meets the deadline check after every few bytes."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 before 2.3
        yield from response.iter_content(chunk_size=16384)
        return
    try:
        while chunk := read1(16384, decode_content=True):
            yield chunk
    except urllib3.exceptions.HTTPError as exc:
        raise requests.ConnectionError(str(exc)) from exc


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_client_lock = threading.Lock()
_clients: dict[tuple, ClerkClient] = {}


def get_client() -> ClerkClient:
    """The process's pooled client for the current settings (tests may change them)."""
    key = (
        settings.CLERK_API_URL,
        settings.CLERK_PUBLIC_KEY,
        settings.CLERK_PRIVATE_KEY,
        settings.CLERK_API_CONNECT_TIMEOUT,
        settings.CLERK_API_READ_TIMEOUT,
    )
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            client = ClerkClient(
                base_url=key[0],
                public_key=key[1],
                private_key=key[2],
                connect_timeout=key[3],
                read_timeout=key[4],
            )
            _clients.clear()  # settings changed: drop the old pool
            _clients[key] = client
        return client
