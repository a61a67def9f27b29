"""System checks that refuse a configuration which would leak feed data or weaken its guards.

One small function per rule, registered with Django's check framework; messages are module
constants with stable ids (`clerkfeeds.E001`…, `W001`…) and a hint that says the fix. A leak is
an Error (`check --deploy` fails only on Errors). Checks of the deployment environment are
`deploy=True`, like Django's own security checks; checks of settings that are wrong anywhere
run on every command. CLERK_DATA_PURPOSE is checked by gdpr (gdpr.E001).

See docs/security.md ("System checks") for every id and when it fires.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.http.request import split_domain_port, validate_host
from rest_framework.settings import api_settings

from clerk.addresses import HostKind, classify_host
from feeds.authentication import ClerkTokenAuthentication, FeedHashAuthentication, IsClerkImporter
from feeds.throttling import AuthFailureThrottle

FEED_MIDDLEWARE = "feeds.middleware.FeedSecurityMiddleware"
PER_PROCESS_CACHE = "django.core.cache.backends.locmem.LocMemCache"
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"
TOKEN_CACHE_LONGEST_SECONDS = 3600
# Clerk's own API host: trusted by name, without a DNS lookup (a build without DNS passes).
CLERK_API_HOSTS = frozenset({"api.clerk.io"})
# Reserved names (RFC 2606) under two top-level domains: an ALLOWED_HOSTS pattern that admits
# both, in some spelling a client may send, admits any Host. "name.." is such a spelling: Django
# strips one trailing dot, and the pattern "." matches the other.
FOREIGN_HOSTS = ("clerkfeeds-probe.invalid", "clerkfeeds-probe.example")
CLERK_TIMEOUT_BUDGET_SECONDS = 10.0

E001 = Error(
    "CLERK_PUBLIC_KEY is empty: feed tokens cannot be verified with Clerk.",
    hint="Set CLERK_PUBLIC_KEY to the store's public API key from my.clerk.io.",
    id="clerkfeeds.E001",
)
E002 = Error(
    "SECRET_KEY is the insecure development key.",
    hint="Set DJANGO_SECRET_KEY to a long random value (e.g. python -c "
    "'import secrets; print(secrets.token_urlsafe(50))').",
    id="clerkfeeds.E002",
)
E003 = Error(
    "CLERK_PRIVATE_KEY is empty: the single feed's salt/hash and deletions at Clerk cannot work.",
    hint="Set CLERK_PRIVATE_KEY to the store's private API key from my.clerk.io.",
    id="clerkfeeds.E003",
)
E004 = Error(
    "DEBUG is on in a deployment: error pages show settings, queries and personal data.",
    hint="Unset DJANGO_DEBUG (it defaults to off).",
    id="clerkfeeds.E004",
)
E005 = Error(
    f"{FEED_MIDDLEWARE} is not in MIDDLEWARE: feeds would be served over plain HTTP and "
    "failed credentials would not be rate-limited.",
    hint=f"Add '{FEED_MIDDLEWARE}' to MIDDLEWARE, after SecurityMiddleware.",
    id="clerkfeeds.E005",
)
E006 = Error(
    "SECURE_HSTS_SECONDS is 0: clients are not told to use HTTPS only, so a token can be sent "
    "in clear before the feed refuses it.",
    hint="Leave DJANGO_SECURE_HSTS_SECONDS unset (one year) or set it above 0.",
    id="clerkfeeds.E006",
)
E007 = Error(
    "The feeds' authentication is not wired into REST_FRAMEWORK: feeds would be open to anyone.",
    hint="DEFAULT_AUTHENTICATION_CLASSES must hold feeds.authentication.ClerkTokenAuthentication "
    "(and FeedHashAuthentication), DEFAULT_PERMISSION_CLASSES feeds.authentication.IsClerkImporter.",
    id="clerkfeeds.E007",
)
E008 = Error(
    "The default cache is per-process (local memory) while CLERK_WEB_WORKERS > 1: token "
    "verifications, refusals and failure limits are not shared, so Clerk is called per worker "
    "and the limit on failed attempts is multiplied.",
    hint="Set CACHE_URL to a shared cache, e.g. redis://redis:6379/1.",
    id="clerkfeeds.E008",
)
E009 = Error(
    "The default cache is the dummy cache: every feed page calls Clerk and failed attempts are never limited.",
    hint="Set CACHE_URL to a real cache (redis://… for several workers).",
    id="clerkfeeds.E009",
)
E010 = Error(
    "CLERK_FEED_BASIC_AUTH is not 'user:password' with a non-empty user and password.",
    hint="Set CLERK_FEED_BASIC_AUTH to user:password (both non-empty), or leave it unset.",
    id="clerkfeeds.E010",
)
E011 = Error(
    "CLERK_API_URL is not an https:// URL: tokens and private keys would travel in clear.",
    hint="Leave CLERK_API_URL unset (https://api.clerk.io/v2) in production.",
    id="clerkfeeds.E011",
)
E012 = Error(
    "CLERK_API_URL points at a loopback or private address: tokens would be verified by "
    "something that is not Clerk (the fake Clerk of the demo and tests?).",
    hint="Leave CLERK_API_URL unset (https://api.clerk.io/v2) in production.",
    id="clerkfeeds.E012",
)
E013 = Error(
    "CLERK_FEED_MAX_LIMIT is below 1: no page could be served.",
    hint="Leave CLERK_FEED_MAX_LIMIT unset (10000) or set a positive integer.",
    id="clerkfeeds.E013",
)
E014 = Error(
    "SECURE_SSL_REDIRECT is on and /feed/ is not in SECURE_REDIRECT_EXEMPT: plain-HTTP feed "
    "requests would be redirected, inviting clients to send their token in clear again.",
    hint="Keep r'^feed/' in SECURE_REDIRECT_EXEMPT; the feed middleware answers plain HTTP with 403.",
    id="clerkfeeds.E014",
)
E015 = Error(
    "REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['feed_auth_failures'] is missing or not a rate: "
    "failed attempts are not limited and Clerk's API can be hammered through the feeds.",
    hint="Set it to a rate such as '20/min' (CLERK_AUTH_FAILURE_RATE).",
    id="clerkfeeds.E015",
)
E016 = Error(
    "CLERK_API_URL's host name does not resolve (or not within a few seconds): it cannot be "
    "shown not to be a loopback or private address, so it is refused (fail closed).",
    hint="Leave CLERK_API_URL unset (https://api.clerk.io/v2, accepted without a lookup), or run "
    "check --deploy where DNS answers.",
    id="clerkfeeds.E016",
)
E017 = Error(
    "ALLOWED_HOSTS admits any host ('*', or a pattern such as '.'): links and redirects could be "
    "built from a Host header the client chose.",
    hint="Set DJANGO_ALLOWED_HOSTS to the names the service answers under, e.g. feeds.shop.example.",
    id="clerkfeeds.E017",
)
E018 = Error(
    "NUM_PROXIES is negative.",
    hint="Set DJANGO_NUM_PROXIES to the number of proxies in front that append to X-Forwarded-For "
    "(0 for none), or leave it unset.",
    id="clerkfeeds.E018",
)
W001 = Warning(
    f"CLERK_TOKEN_CACHE_SECONDS is above {TOKEN_CACHE_LONGEST_SECONDS}: a token Clerk revoked keeps working that long.",
    hint="Keep it at a few minutes (default 300).",
    id="clerkfeeds.W001",
)
W002 = Warning(
    "CLERK_TOKEN_CACHE_SECONDS is 0 or less: every feed page costs a call to Clerk.",
    hint="Keep it at a few minutes (default 300).",
    id="clerkfeeds.W002",
)
W003 = Warning(
    f"CLERK_API_CONNECT_TIMEOUT + CLERK_API_READ_TIMEOUT exceed {CLERK_TIMEOUT_BUDGET_SECONDS:g} s: "
    "a slow Clerk holds a worker that long per unverified request.",
    hint="Keep them short (defaults 2 s and 5 s).",
    id="clerkfeeds.W003",
)
W004 = Warning(
    "TRUST_X_FORWARDED_PROTO is on but NUM_PROXIES is unset: the client is assumed to be one proxy "
    "away. With more proxies in front, every client behind them shares one failure limit; "
    "with none, a client can claim any address.",
    hint="Set DJANGO_NUM_PROXIES to the number of proxies in front that append to X-Forwarded-For.",
    id="clerkfeeds.W004",
)


# --- every command -----------------------------------------------------------------------------
@register(Tags.security)
def check_feed_middleware(app_configs, **kwargs):
    return [] if FEED_MIDDLEWARE in settings.MIDDLEWARE else [E005]


@register(Tags.security)
def check_feed_authentication_wired(app_configs, **kwargs):
    authentication = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    permissions = api_settings.DEFAULT_PERMISSION_CLASSES
    wired = (
        any(issubclass(c, ClerkTokenAuthentication) for c in authentication)
        and any(issubclass(c, FeedHashAuthentication) for c in authentication)
        and any(issubclass(c, IsClerkImporter) for c in permissions)
    )
    return [] if wired else [E007]


@register(Tags.security)
def check_basic_auth_setting(app_configs, **kwargs):
    configured = settings.CLERK_FEED_BASIC_AUTH
    if not configured:
        return []
    user, colon, password = configured.partition(":")
    return [] if colon and user and password else [E010]


@register(Tags.security)
def check_failure_rate(app_configs, **kwargs):
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(AuthFailureThrottle.scope)
    try:
        number, _seconds = AuthFailureThrottle.parse_rate(AuthFailureThrottle, rate)
    except (AttributeError, ValueError, KeyError, IndexError, TypeError):
        return [E015]
    return [] if number and number > 0 else [E015]


@register(Tags.security)
def check_ssl_redirect_exempts_feeds(app_configs, **kwargs):
    if not settings.SECURE_SSL_REDIRECT:
        return []
    exempt = any(re.search(pattern, "feed/products.json") for pattern in settings.SECURE_REDIRECT_EXEMPT)
    return [] if exempt else [E014]


@register(Tags.security)
def check_num_proxies(app_configs, **kwargs):
    count = settings.NUM_PROXIES
    return [E018] if count is not None and count < 0 else []


@register(Tags.compatibility)
def check_feed_max_limit(app_configs, **kwargs):
    return [] if settings.CLERK_FEED_MAX_LIMIT >= 1 else [E013]


@register(Tags.security)
def check_token_cache_seconds(app_configs, **kwargs):
    seconds = settings.CLERK_TOKEN_CACHE_SECONDS
    if seconds > TOKEN_CACHE_LONGEST_SECONDS:
        return [W001]
    if seconds <= 0:
        return [W002]
    return []


@register(Tags.security)
def check_clerk_timeouts(app_configs, **kwargs):
    budget = settings.CLERK_API_CONNECT_TIMEOUT + settings.CLERK_API_READ_TIMEOUT
    return [W003] if budget > CLERK_TIMEOUT_BUDGET_SECONDS else []


# --- check --deploy ----------------------------------------------------------------------------
@register(Tags.security, deploy=True)
def check_public_key(app_configs, **kwargs):
    return [E001] if not settings.DEBUG and not settings.CLERK_PUBLIC_KEY else []


@register(Tags.security, deploy=True)
def check_private_key(app_configs, **kwargs):
    return [E003] if not settings.DEBUG and not settings.CLERK_PRIVATE_KEY else []


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    insecure = settings.SECRET_KEY == getattr(settings, "INSECURE_DEV_SECRET_KEY", None)
    return [E002] if not settings.DEBUG and insecure else []


@register(Tags.security, deploy=True)
def check_debug(app_configs, **kwargs):
    return [E004] if settings.DEBUG else []


@register(Tags.security, deploy=True)
def check_hsts(app_configs, **kwargs):
    return [E006] if not settings.DEBUG and not settings.SECURE_HSTS_SECONDS else []


@register(Tags.caches, deploy=True)
def check_shared_cache(app_configs, **kwargs):
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend == DUMMY_CACHE:
        return [E009]
    if backend == PER_PROCESS_CACHE and settings.CLERK_WEB_WORKERS > 1:
        return [E008]
    return []


@register(Tags.security, deploy=True)
def check_clerk_api_https(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    return [] if _clerk_api_url_parts()[0] == "https" else [E011]


@register(Tags.security, deploy=True)
def check_clerk_api_public(app_configs, **kwargs):
    """E012 for a local address in any spelling, E016 for a name that does not resolve."""
    if settings.DEBUG:
        return []
    host = _clerk_api_url_parts()[1]
    if host in CLERK_API_HOSTS:
        return []
    kind = classify_host(host)
    if kind is HostKind.LOCAL:
        return [E012]
    return [E016] if kind is HostKind.UNRESOLVED else []


@register(Tags.security, deploy=True)
def check_allowed_hosts(app_configs, **kwargs):
    return [E017] if any(_admits_any_host(pattern) for pattern in settings.ALLOWED_HOSTS) else []


@register(Tags.security, deploy=True)
def check_proxy_count_set(app_configs, **kwargs):
    return [W004] if settings.TRUST_X_FORWARDED_PROTO and settings.NUM_PROXIES is None else []


def _admits_any_host(pattern: str) -> bool:
    """Django's own host validation (`get_host`) lets every foreign name through in some spelling."""
    return all(
        any(validate_host(split_domain_port(spelling)[0], [pattern]) for spelling in (name, f"{name}.."))
        for name in FOREIGN_HOSTS
    )


def _clerk_api_url_parts() -> tuple[str, str | None]:
    """The scheme and host of CLERK_API_URL; ("", None) when it does not even parse."""
    try:
        parts = urlsplit(settings.CLERK_API_URL)
        return parts.scheme, parts.hostname
    except ValueError:  # e.g. "https://[::1": fails closed as not-https and not-public
        return "", None
