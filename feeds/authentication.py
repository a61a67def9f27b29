"""Who may read a feed: Clerk's importer, proven by a credential that Clerk vouches for.

DRF classes (settings.REST_FRAMEWORK): `ClerkTokenAuthentication` (`X-Clerk-Authorization:
Bearer <token>`, verified by Clerk, the verdict cached under a keyed digest, never the token),
`FeedHashAuthentication` (Clerk's salt/hash, single feed only), then `IsClerkImporter`. HTTP
Basic (`CLERK_FEED_BASIC_AUTH`) is required in addition when configured, checked first. Fail
closed: a missing, malformed or refused credential is a 401 `NotAuthenticated` (with
`challenges()`); no usable answer from Clerk a 503 `ClerkUnavailable`, reported as an outage.
A success reports the caller's opaque id (`request.clerk_client_id`). Details: docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from clerk.client import ClerkRefused, ClerkUnreachable, get_client
from feeds.errors import REALM, ClerkUnavailable, NotAuthenticated
from feeds.middleware import is_feed_path
from feeds.throttling import client_address

logger = logging.getLogger(__name__)

TOKEN_HEADER = "HTTP_X_CLERK_AUTHORIZATION"
# Clerk's tokens are JWT-sized; anything far longer is not a token and is not sent on to Clerk.
TOKEN_MAX_LENGTH = 4096
# Visible ASCII only: a token with spaces or control characters is malformed, not "wrong".
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")
# A refused token is answered from the cache for this long: retrying it cannot hammer Clerk.
REFUSAL_CACHE_SECONDS = 30
TOKEN_CACHE_PREFIX = "clerkfeeds:clerk-token:"
# Cached verdicts: a success is `(_VERIFIED, expires_at)` (unix time), so that a process reading
# it knows how long it still holds; a bare `_VERIFIED` (written before expiries were stored) is
# still a success, just one this process does not memorise. A refusal is `_REFUSED`.
_VERIFIED = "verified"
_REFUSED = "refused"
# How long a process trusts a success from memory, without asking the cache (see `_VerifiedMemo`).
VERIFIED_MEMO_SECONDS = 5.0
VERIFIED_MEMO_MAX_ENTRIES = 1024

SINGLE_FEED_PATHS = frozenset({"/feed/all.json"})
HASH_WINDOW_SECONDS = 100
SALT_MAX_LENGTH = 256
_HASH_RE = re.compile(r"^[0-9a-fA-F]{128}$")


@dataclass(frozen=True)
class ClerkImporter:
    """The authenticated caller: Clerk's importer, known only by an opaque id."""

    client_id: str
    method: str  # "token" or "hash"

    is_authenticated = True
    is_anonymous = False


def challenges() -> str:
    """The `WWW-Authenticate` value: every scheme a feed client must satisfy."""
    value = f'Bearer realm="{REALM}"'
    if settings.CLERK_FEED_BASIC_AUTH:
        value = f'Basic realm="{REALM}", charset="UTF-8", {value}'
    return value


def not_authenticated(code: str, detail: str) -> NotAuthenticated:
    return NotAuthenticated(detail, code=code, headers={"WWW-Authenticate": challenges()})


# --- HTTP Basic ----------------------------------------------------------------------------------
def check_basic_auth(request) -> None:
    """Raise `NotAuthenticated` unless the configured Basic credentials are presented.

    Both parts are compared, always, as SHA-256 digests with `hmac.compare_digest`: the time taken
    says neither which part failed nor how long the expected values are.
    """
    configured = settings.CLERK_FEED_BASIC_AUTH
    if not configured:
        return
    expected_user, colon, expected_password = configured.partition(":")
    if not (colon and expected_user and expected_password):
        # clerkfeeds.E010 refuses this configuration; at run time, refuse everyone.
        logger.error("CLERK_FEED_BASIC_AUTH is malformed; every feed request is refused")
        raise not_authenticated("basic_auth_required", "Valid HTTP Basic credentials are required.")
    user, password = _basic_credentials(request.META.get("HTTP_AUTHORIZATION", ""))
    user_ok = _same(user, expected_user)
    password_ok = _same(password, expected_password)
    if not (user_ok & password_ok):  # `&`: both comparisons always run
        raise not_authenticated("basic_auth_required", "Valid HTTP Basic credentials are required.")


def _basic_credentials(header: str) -> tuple[str, str]:
    """(user, password) from an `Authorization: Basic …` header; ("", "") when there are none."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8")).digest(),
        hashlib.sha256(expected.encode("utf-8")).digest(),
    )


# --- Clerk's bearer token ------------------------------------------------------------------------
def token_digest(token: str) -> str:
    """A keyed SHA-256 of the token, bound to our public key: the cache's key, never the token."""
    message = f"{settings.CLERK_PUBLIC_KEY}\x00{token}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def bearer_token(header: str) -> str:
    """The token of an `X-Clerk-Authorization: Bearer <token>` value, or `NotAuthenticated`."""
    parts = header.split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise not_authenticated("malformed_credentials", "X-Clerk-Authorization must be 'Bearer <token>'.")
    token = parts[1]
    if not token or len(token) > TOKEN_MAX_LENGTH or not _TOKEN_RE.match(token):
        raise not_authenticated("malformed_credentials", "X-Clerk-Authorization must be 'Bearer <token>'.")
    return token


def client_id_of(digest: str) -> str:
    """The caller's opaque id for logs and walks: a prefix of the keyed digest, never the token."""
    return digest[:16]


def verify_token(token: str, *, digest: str) -> None:
    """Admit the token (return) or raise: from this process's memory of a recent success, from the
    cache, or else with one call to Clerk."""
    if _verified_memo.holds(digest):
        return
    key = TOKEN_CACHE_PREFIX + digest
    client_id = client_id_of(digest)
    verdict = _cache_get(key)
    if verdict == _REFUSED:
        raise not_authenticated("invalid_token", "Clerk did not accept this token.")
    remaining = _verified_for(verdict)
    if remaining is not None:
        _verified_memo.remember(digest, remaining)
        return
    try:
        get_client().verify_token(token)
    except ClerkRefused as exc:
        _cache_set(key, _REFUSED, REFUSAL_CACHE_SECONDS)
        logger.info(
            "clerk token refused",
            extra={"client": client_id, "clerk_status": exc.status, "clerk_error": exc.error_type},
        )
        raise not_authenticated("invalid_token", "Clerk did not accept this token.") from None
    except ClerkUnreachable as exc:
        logger.warning("clerk token service unreachable", extra={"client": client_id, "clerk_status": exc.status})
        raise ClerkUnavailable(retry_after=_retry_after(exc.retry_after)) from None
    seconds = settings.CLERK_TOKEN_CACHE_SECONDS
    _cache_set(key, (_VERIFIED, _wall_clock() + seconds), seconds)
    _verified_memo.remember(digest, seconds)


def _verified_for(verdict: Any) -> float | None:
    """How many more seconds a cached verdict vouches for the token: None when it does not (no
    entry, a refusal, an expired or unknown value), 0 for a success of unknown expiry."""
    if verdict == _VERIFIED:
        return 0.0
    if isinstance(verdict, tuple) and len(verdict) == 2 and verdict[0] == _VERIFIED:
        remaining = verdict[1] - _wall_clock()
        # Past its expiry by our clock (the cache may keep it a moment longer): verify anew.
        return remaining if remaining > 0 else None
    return None


class _VerifiedMemo:
    """Digests of tokens verified recently, each until a monotonic deadline, in this process.

    Why it is safe: it only ever holds successes, each for at most `VERIFIED_MEMO_SECONDS` and
    never past the expiry of the cached success it came from, so a token is admitted no longer
    than the shared cache alone would admit it (`CLERK_TOKEN_CACHE_SECONDS` after Clerk said
    yes), plus nothing. A refusal is never memorised here: it lives in the shared cache only,
    so a token Clerk starts to accept is admitted as soon as the cached refusal expires. The
    failure throttle is asked before any of this (`feeds.middleware`), so a blocked address
    gets its 429 whatever this memory holds. What it costs: a success deleted from the shared
    cache by hand is still honoured by each process for up to `VERIFIED_MEMO_SECONDS`.
    Bounded: when full, expired entries are dropped, and if none were, all of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def holds(self, digest: str) -> bool:
        until = self._until.get(digest)
        if until is None:
            return False
        if _monotonic() < until:
            return True
        with self._lock:
            if self._until.get(digest) == until:
                del self._until[digest]
        return False

    def remember(self, digest: str, seconds: float) -> None:
        seconds = min(seconds, VERIFIED_MEMO_SECONDS)
        if seconds <= 0:
            return
        now = _monotonic()
        with self._lock:
            if digest not in self._until and len(self._until) >= VERIFIED_MEMO_MAX_ENTRIES:
                self._until = {d: u for d, u in self._until.items() if u > now}
                if len(self._until) >= VERIFIED_MEMO_MAX_ENTRIES:
                    self._until = {}
            self._until[digest] = now + seconds

    def clear(self) -> None:
        with self._lock:
            self._until = {}


_verified_memo = _VerifiedMemo()


def forget_verified_tokens() -> None:
    """Drop this process's memory of verified tokens (the shared cache is untouched)."""
    _verified_memo.clear()


@receiver(setting_changed)
def _forget_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # A changed key, Clerk URL or cache lifetime must not be answered from memory (tests change
    # these around every request; a deployment changes them only by restarting).
    if setting.startswith("CLERK_") or setting in ("SECRET_KEY", "CACHES"):
        forget_verified_tokens()


def _monotonic() -> float:
    return time.monotonic()


def _wall_clock() -> float:
    return time.time()


def _retry_after(clerk_says: float | None) -> int:
    if clerk_says is None:
        return 30
    return int(min(max(clerk_says, 1), 300))


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # a cache outage costs a call to Clerk, never a wrong answer
        logger.warning("token cache unavailable")
        return None


def _cache_set(key: str, value: str, seconds: int) -> None:
    if seconds <= 0:
        return
    try:
        cache.set(key, value, seconds)
    except Exception:
        logger.warning("token cache unavailable")


# --- Clerk's salt/hash on the single feed --------------------------------------------------------
def feed_hash(salt: str, window: int, private_key: str) -> str:
    """Clerk's single-feed hash for one 100-second window (hex)."""
    return hashlib.sha512(f"{salt}{private_key}{window}".encode()).hexdigest()


def _now() -> float:
    return time.time()


def check_feed_hash(salt: str, given: str) -> bool:
    """True when `given` is the hash of the current or the previous window, in constant time."""
    private_key = settings.CLERK_PRIVATE_KEY
    if not private_key or len(salt) > SALT_MAX_LENGTH or not _HASH_RE.match(given):
        return False
    window = int(_now() // HASH_WINDOW_SECONDS)
    given_bytes = given.lower().encode()
    matches = [hmac.compare_digest(feed_hash(salt, w, private_key).encode(), given_bytes) for w in (window, window - 1)]
    return any(matches)


# --- DRF classes ---------------------------------------------------------------------------------
class FeedAuthentication(BaseAuthentication, ABC):
    """The contract of a feed credential.

    `authenticate()` returns `(ClerkImporter, None)` on success, None when the request does not
    carry this kind of credential, and raises when it carries one that fails. Under /feed/, Basic
    auth (when configured) is checked first, whatever the credential: nothing reaches Clerk
    without it.
    """

    def authenticate(self, request):
        if is_feed_path(request.path_info):
            check_basic_auth(request)
        importer = self.authenticate_credential(request)
        if importer is None:
            return None
        caller = getattr(request, "feed_caller", None)  # set by the feed middleware under /feed/
        if caller is not None:
            caller.identified(importer.client_id)
        else:
            request.clerk_client_id = importer.client_id
        return importer, None

    @abstractmethod
    def authenticate_credential(self, request) -> ClerkImporter | None:
        """The importer a credential of this kind proves; None when there is none of this kind."""

    def authenticate_header(self, request) -> str:
        return challenges()


class ClerkTokenAuthentication(FeedAuthentication):
    """`X-Clerk-Authorization: Bearer <token>`, verified by Clerk."""

    def authenticate_credential(self, request) -> ClerkImporter | None:
        header = request.META.get(TOKEN_HEADER)
        if header is None:
            return None
        token = bearer_token(header)
        digest = token_digest(token)
        try:
            verify_token(token, digest=digest)
        except ClerkUnavailable:
            # Clerk's failure, not the caller's: `feeds.middleware` does not count it.
            caller = getattr(request, "feed_caller", None)
            if caller is not None:
                caller.clerk_outage()
            raise
        return ClerkImporter(client_id=client_id_of(digest), method="token")


class FeedHashAuthentication(FeedAuthentication):
    """Clerk's `salt`/`hash` query, on the single feed only."""

    def authenticate_credential(self, request) -> ClerkImporter | None:
        if request.path_info not in SINGLE_FEED_PATHS:
            return None
        salt = request.query_params.get("salt")
        given = request.query_params.get("hash")
        if salt is None and given is None:
            return None
        if not salt or not given:
            raise not_authenticated("malformed_credentials", "The single feed needs both salt and hash.")
        if not check_feed_hash(salt, given):
            logger.info("feed hash refused", extra={"client": client_address(request)})
            raise not_authenticated("invalid_hash", "The salt/hash pair is wrong or expired.")
        return ClerkImporter(client_id=client_address(request), method="hash")


class IsClerkImporter(BasePermission):
    """Admit only a request that one of the feed credentials authenticated; otherwise 401."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.user, ClerkImporter):
            return True
        raise not_authenticated("not_authenticated", "Valid Clerk credentials are required.")
