"""Each system check fires on its unsafe setting and stays silent on the safe one."""

from __future__ import annotations

import pytest
from django.core import checks as django_checks

from feeds import checks

SAFE_PRODUCTION = {
    "DEBUG": False,
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-enough-0123456789",
    "CLERK_PUBLIC_KEY": "pub",
    "CLERK_PRIVATE_KEY": "priv",
    "CLERK_API_URL": "https://api.clerk.io/v2",
    "SECURE_HSTS_SECONDS": 31536000,
    "CACHES": {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/9"}
    },
    "CLERK_WEB_WORKERS": 4,
    "CLERK_FEED_BASIC_AUTH": "",
    "ALLOWED_HOSTS": ["feeds.shop.example"],
    "TRUST_X_FORWARDED_PROTO": True,
    "NUM_PROXIES": 1,
}


@pytest.fixture
def production(settings):
    for name, value in SAFE_PRODUCTION.items():
        setattr(settings, name, value)
    return settings


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_the_safe_production_settings_raise_nothing(production):
    messages = django_checks.run_checks(include_deployment_checks=True)
    ours = [m for m in messages if m.id.startswith("clerkfeeds.")]
    assert ours == []


# (check function, unsafe settings, id)
CASES = [
    (checks.check_public_key, {"CLERK_PUBLIC_KEY": ""}, "clerkfeeds.E001"),
    (
        checks.check_secret_key,
        {"SECRET_KEY": "django-insecure-clerkfeeds-development-only-key-do-not-deploy"},
        "clerkfeeds.E002",
    ),
    (checks.check_private_key, {"CLERK_PRIVATE_KEY": ""}, "clerkfeeds.E003"),
    (checks.check_debug, {"DEBUG": True}, "clerkfeeds.E004"),
    (checks.check_hsts, {"SECURE_HSTS_SECONDS": 0}, "clerkfeeds.E006"),
    (
        checks.check_shared_cache,
        {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}, "CLERK_WEB_WORKERS": 2},
        "clerkfeeds.E008",
    ),
    (
        checks.check_shared_cache,
        {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}, "CLERK_WEB_WORKERS": 1},
        "clerkfeeds.E009",
    ),
    (checks.check_basic_auth_setting, {"CLERK_FEED_BASIC_AUTH": "clerk"}, "clerkfeeds.E010"),
    (checks.check_basic_auth_setting, {"CLERK_FEED_BASIC_AUTH": "clerk:"}, "clerkfeeds.E010"),
    (checks.check_basic_auth_setting, {"CLERK_FEED_BASIC_AUTH": ":password"}, "clerkfeeds.E010"),
    (checks.check_clerk_api_https, {"CLERK_API_URL": "http://api.clerk.io/v2"}, "clerkfeeds.E011"),
    (checks.check_clerk_api_public, {"CLERK_API_URL": "https://127.0.0.1:8765"}, "clerkfeeds.E012"),
    (checks.check_clerk_api_public, {"CLERK_API_URL": "https://localhost/v2"}, "clerkfeeds.E012"),
    (checks.check_clerk_api_public, {"CLERK_API_URL": "https://10.1.2.3/v2"}, "clerkfeeds.E012"),
    (checks.check_clerk_api_public, {"CLERK_API_URL": "https://[::1]:8765"}, "clerkfeeds.E012"),
    (checks.check_feed_max_limit, {"CLERK_FEED_MAX_LIMIT": 0}, "clerkfeeds.E013"),
    (checks.check_allowed_hosts, {"ALLOWED_HOSTS": ["*"]}, "clerkfeeds.E017"),
    (checks.check_allowed_hosts, {"ALLOWED_HOSTS": ["feeds.shop.example", "*"]}, "clerkfeeds.E017"),
    (checks.check_allowed_hosts, {"ALLOWED_HOSTS": ["."]}, "clerkfeeds.E017"),
    (checks.check_num_proxies, {"NUM_PROXIES": -1}, "clerkfeeds.E018"),
    (checks.check_proxy_count_set, {"NUM_PROXIES": None}, "clerkfeeds.W004"),
    (
        checks.check_ssl_redirect_exempts_feeds,
        {"SECURE_SSL_REDIRECT": True, "SECURE_REDIRECT_EXEMPT": []},
        "clerkfeeds.E014",
    ),
    (checks.check_token_cache_seconds, {"CLERK_TOKEN_CACHE_SECONDS": 86400}, "clerkfeeds.W001"),
    (checks.check_token_cache_seconds, {"CLERK_TOKEN_CACHE_SECONDS": 0}, "clerkfeeds.W002"),
    (
        checks.check_clerk_timeouts,
        {"CLERK_API_CONNECT_TIMEOUT": 5.0, "CLERK_API_READ_TIMEOUT": 30.0},
        "clerkfeeds.W003",
    ),
]


@pytest.mark.parametrize(("check", "unsafe", "expected"), CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_check_fires_on_its_unsafe_setting(production, check, unsafe, expected):
    assert check(None) == []
    for name, value in unsafe.items():
        setattr(production, name, value)
    assert ids(check(None)) == [expected]


@pytest.mark.parametrize(
    "check",
    [
        checks.check_public_key,
        checks.check_private_key,
        checks.check_secret_key,
        checks.check_hsts,
        checks.check_clerk_api_https,
        checks.check_clerk_api_public,
    ],
)
def test_development_checks_are_silent_under_debug(settings, check):
    settings.DEBUG = True
    settings.CLERK_PUBLIC_KEY = settings.CLERK_PRIVATE_KEY = ""
    settings.SECRET_KEY = settings.INSECURE_DEV_SECRET_KEY
    settings.SECURE_HSTS_SECONDS = 0
    settings.CLERK_API_URL = "http://127.0.0.1:8765"
    assert check(None) == []


def test_a_single_worker_may_use_the_per_process_cache(production):
    production.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    production.CLERK_WEB_WORKERS = 1
    assert checks.check_shared_cache(None) == []


@pytest.mark.parametrize(
    "hosts",
    [["feeds.shop.example"], [".shop.example"], ["localhost", "127.0.0.1", "[::1]"], [".com"], []],
    ids=["one-name", "subdomains", "loopback", "a-whole-tld", "none"],
)
def test_allowed_hosts_that_name_the_service_pass(production, hosts):
    production.ALLOWED_HOSTS = hosts
    assert checks.check_allowed_hosts(None) == []


def test_a_wildcard_host_is_refused_by_check_deploy_only(production):
    production.ALLOWED_HOSTS = ["*"]
    assert "clerkfeeds.E017" not in ids(django_checks.run_checks())
    assert "clerkfeeds.E017" in ids(django_checks.run_checks(include_deployment_checks=True))


@pytest.mark.parametrize(("trust", "count"), [(False, None), (True, 0), (True, 2), (False, 1)])
def test_the_proxy_count_may_be_unset_only_without_a_trusted_proxy(production, trust, count):
    production.TRUST_X_FORWARDED_PROTO = trust
    production.NUM_PROXIES = count
    assert checks.check_proxy_count_set(None) == []


def test_missing_feed_middleware_is_e005(settings):
    assert checks.check_feed_middleware(None) == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != checks.FEED_MIDDLEWARE]
    assert ids(checks.check_feed_middleware(None)) == ["clerkfeeds.E005"]


@pytest.mark.parametrize(
    "override",
    [
        {"DEFAULT_AUTHENTICATION_CLASSES": []},
        {"DEFAULT_AUTHENTICATION_CLASSES": ["feeds.authentication.FeedHashAuthentication"]},
        {"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]},
        {"DEFAULT_PERMISSION_CLASSES": []},
    ],
    ids=["no-authentication", "no-token", "allow-any", "no-permission"],
)
def test_feed_authentication_not_wired_is_e007(settings, override):
    assert checks.check_feed_authentication_wired(None) == []
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **override}
    assert ids(checks.check_feed_authentication_wired(None)) == ["clerkfeeds.E007"]


@pytest.mark.parametrize("rate", [None, "lots", "0/min", "20/fortnight"])
def test_missing_or_broken_failure_rate_is_e015(settings, rate):
    assert checks.check_failure_rate(None) == []
    rates = {} if rate is None else {"feed_auth_failures": rate}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    assert ids(checks.check_failure_rate(None)) == ["clerkfeeds.E015"]


def test_unknown_data_purpose_is_refused_by_the_gdpr_check(settings):
    settings.CLERK_DATA_PURPOSE = "analytics"
    assert "gdpr.E001" in ids(django_checks.run_checks())
    settings.CLERK_DATA_PURPOSE = "marketing"
    assert "gdpr.E001" not in ids(django_checks.run_checks())


def test_leak_checks_are_errors_so_check_deploy_fails_on_them():
    errors = [value for name, value in vars(checks).items() if name.startswith("E0")]
    assert errors and all(e.level >= django_checks.ERROR for e in errors)
    assert all(e.hint for e in errors)
