"""Rate-limiting of failed feed requests, so the service cannot be used to hammer Clerk's API.

An address whose requests keep failing (401, or a 503 that is not a Clerk outage) gets 429 for
a while, before anything else is checked. Only failures count, at DRF's
`DEFAULT_THROTTLE_RATES["feed_auth_failures"]`, in the shared cache; the address is the real
client's behind the trusted proxies (`feeds.proxies.client_address`). The middleware
(`feeds.middleware.FeedSecurityMiddleware`) asks first and records failures on the way out.
Why it runs before authentication and is never remembered in-process: docs/security.md.
"""

from __future__ import annotations

import logging
import math

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from feeds.proxies import client_address

__all__ = ["FAILURE_STATUSES", "AuthFailureThrottle", "client_address"]

logger = logging.getLogger(__name__)

# The statuses that count as a failure of the client's credentials or of the check itself.
FAILURE_STATUSES = frozenset({401, 503})


class AuthFailureThrottle(SimpleRateThrottle):
    """A sliding window of recent failures per client address, in DRF's throttle cache.

    Unlike DRF's throttles, `allow_request()` only *checks*: a request is counted by
    `record_failure()` once it has failed.
    """

    scope = "feed_auth_failures"
    cache_format = "clerkfeeds:throttle:%(scope)s:%(ident)s"

    def get_rate(self) -> str | None:
        # DRF binds THROTTLE_RATES at import; read the live settings (tests and reloads change them).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def allow_request(self, request, view=None) -> bool:
        if self.rate is None:
            return True
        self._load(request)
        return len(self.history) < self.num_requests

    def wait(self) -> float:
        """Seconds until the oldest failure that keeps the address blocked leaves the window."""
        if len(self.history) < self.num_requests:
            return 0.0
        blocking = self.history[self.num_requests - 1]
        return max(self.duration - (self.now - blocking), 1.0)

    def retry_after(self) -> int:
        return max(math.ceil(self.wait()), 1)

    def record_failure(self, request) -> None:
        if self.rate is None:
            return
        self._load(request)
        self.history.insert(0, self.now)
        # Keep no more than we need to decide: the list cannot grow without bound under attack.
        del self.history[self.num_requests :]
        try:
            self.cache.set(self.key, self.history, self.duration)
        except Exception:  # a cache outage must not turn a 401 into a 500
            logger.warning("feed failure throttle could not be stored")

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        try:
            history = self.cache.get(self.key, [])
        except Exception:  # a cache outage: decide on what we know (nothing), never crash
            logger.warning("feed failure throttle could not be read")
            history = []
        self.history = [t for t in history if t > self.now - self.duration]
