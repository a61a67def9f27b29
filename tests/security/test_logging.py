"""No token, hash, salt, email or name reaches a log line, ever.

Two layers are proven: the redaction filter on its own (unit tests), and the whole logging
pipeline while successful and failing requests go through the real feed views, the customers
feed with its emails included: every record any logger emits is captured where the configured
handler writes it (after the filter, formatted) and, for the project's own loggers, also before
the filter (the code must not log secrets in the first place).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.test import Client

from clerkfeeds.logging import REDACTED, RedactingFilter, redact
from feeds import views as feed_views
from feeds.authentication import token_digest
from tests.conftest import TEST_PRIVATE_KEY, TEST_TOKEN, HTTPSClient
from tests.factories import CustomerFactory, OrderFactory, ProductFactory
from tests.security.conftest import VERIFY, basic, bearer, body

WRONG_TOKEN = "wrong-importer-token-Zq81"
BASIC_USER, BASIC_PASSWORD = "clerk-basic-user", "basic-Pa55word-9x"
SALT = "salt-4b1d"
PEOPLE = [("Mariella Quattrocchi", "mariella.q@example.it"), ("Jonas Eberhardt", "j.eberhardt@example.de")]
GUEST_EMAIL = "guest.shopper@example.org"


# --- the filter --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"X-Clerk-Authorization: Bearer {TEST_TOKEN}", TEST_TOKEN),
        (f"{{'HTTP_X_CLERK_AUTHORIZATION': 'Bearer {TEST_TOKEN}'}}", TEST_TOKEN),
        ("Authorization: Basic Y2xlcms6c2VjcmV0", "Y2xlcms6c2VjcmV0"),
        (f"GET /feed/all.json?salt={SALT}&hash={'ab' * 64}", SALT),
        (f"GET /feed/all.json?salt={SALT}&hash={'ab' * 64}", "ab" * 64),
        ("DELETE /v2/customers?key=pub&private_key=priv-key-1&customers=[1]", "priv-key-1"),
        ('{"email": "someone@example.com", "id": 1}', "someone@example.com"),
        ("{'name': 'Mariella Quattrocchi', 'id': 1}", "Mariella Quattrocchi"),
        ("customer mariella.q@example.it failed", "mariella.q@example.it"),
        ("digest " + "f" * 64, "f" * 64),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ],
)
def test_redact_removes_the_secret(text, secret):
    assert secret not in redact(text)
    assert REDACTED in redact(text)


def test_redact_leaves_ordinary_text_alone():
    text = "feed page served: products offset=1000 limit=1000 rows=1000 basic auth is on"
    assert redact(text) == text


def make_record(msg, args=(), **extra) -> logging.LogRecord:
    record = logging.LogRecord("feeds.test", logging.WARNING, __file__, 1, msg, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_filter_scrubs_args_and_extra_fields():
    record = make_record(
        "refused %s",
        (f"Bearer {TEST_TOKEN}",),
        token=TEST_TOKEN,
        email="a@b.example",
        params={"limit": 5, "hash": "x" * 128, "note": "mail a@b.example"},
        client="1a2b3c4d5e6f7a8b",
    )
    RedactingFilter().filter(record)
    assert TEST_TOKEN not in record.getMessage()
    assert record.token == REDACTED and record.email == REDACTED
    assert record.params == {"limit": 5, "hash": REDACTED, "note": f"mail {REDACTED}"}
    assert record.client == "1a2b3c4d5e6f7a8b"


def test_filter_scrubs_exception_text_for_every_formatter():
    try:
        raise RuntimeError(f"could not reach https://x.example/?private_key={TEST_PRIVATE_KEY}")
    except RuntimeError:
        record = make_record("boom")
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert TEST_PRIVATE_KEY not in record.exc_text
    assert record.exc_info is None  # a JSON formatter would otherwise format the original again


def test_filter_reduces_an_attached_request_to_method_and_path(rf):
    request = rf.get("/feed/all.json", {"salt": SALT, "hash": "c" * 128})
    record = make_record("Unauthorized: %s", (request.path,), request=request, status_code=401)
    RedactingFilter().filter(record)
    assert record.request == "GET /feed/all.json"


def test_every_configured_handler_has_the_redaction_filter():
    for name, handler in django_settings.LOGGING["handlers"].items():
        assert "redact" in handler.get("filters", []), name


# --- the whole pipeline, through the real views ---------------------------------------------------
class RawTap(logging.Handler):
    """Records of the project's own loggers as the code emitted them, before any filter."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record):
        if record.name.split(".")[0] not in ("feeds", "clerkfeeds", "gdpr", "shop"):
            return
        parts = [record.getMessage(), repr(record.args)]
        parts += [repr(v) for k, v in vars(record).items() if k not in ("msg", "args", "exc_info")]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        self.texts.append(" ".join(parts))


@pytest.fixture
def log_capture(monkeypatch):
    """(written, raw): every line the configured handler writes, with the record's attributes."""
    root = logging.getLogger()
    consoles = [h for h in root.handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]
    assert consoles, "the console handler with the redaction filter is not installed"
    console = consoles[0]
    written: list[str] = []

    def emit(record):
        written.append(console.format(record) + " " + " ".join(repr(v) for v in vars(record).values()))

    monkeypatch.setattr(console, "emit", emit)
    raw = RawTap()
    root.handlers.insert(0, raw)
    levels = {name: logging.getLogger(name).level for name in ("", "django.request", "django.server")}
    root.setLevel(logging.DEBUG)
    # Ops may lower these to see 4xx: even then, no query string with salt/hash may show.
    logging.getLogger("django.request").setLevel(logging.WARNING)
    logging.getLogger("django.server").setLevel(logging.INFO)
    try:
        yield written, raw.texts
    finally:
        root.removeHandler(raw)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def shop(db):
    product = ProductFactory(name="Lampada da tavolo")
    customers = [CustomerFactory(name=name, email=email) for name, email in PEOPLE]
    for customer in customers:
        OrderFactory(customer=customer, lines=[(product.id, 1, product.price)])
    OrderFactory(
        customer=None,
        email=GUEST_EMAIL,
        terms_accepted_at=customers[0].registered_at,
        lines=[(product.id, 2, product.price)],
    )
    return customers


def clerk_hash(salt: str, window: int) -> str:
    return hashlib.sha512(f"{salt}{TEST_PRIVATE_KEY}{window}".encode()).hexdigest()


def test_no_secret_or_personal_data_reaches_any_log_line(shop, fake_clerk, settings, log_capture, monkeypatch):
    written, raw = log_capture
    client = HTTPSClient(raise_request_exception=False)
    window = math.floor(time.time() / 100)
    good_hash, stale_hash = clerk_hash(SALT, window), clerk_hash(SALT, window - 5)

    # Served, with personal data in the bodies: the test means something only if they are there.
    customers = client.get("/feed/customers.json", headers=bearer())
    assert customers.status_code == 200 and PEOPLE[0][1].encode() in body(customers)
    assert client.get("/feed/orders.ndjson", headers=bearer()).status_code == 200
    assert client.get("/feed/products.json", {"limit": 1, "offset": 0}, headers=bearer()).status_code == 200
    single = client.get("/feed/all.json", {"salt": SALT, "hash": good_hash})
    assert single.status_code == 200 and PEOPLE[1][0].encode() in body(single)
    client.head("/feed/customers.json", headers=bearer())

    # Refused or failed.
    assert client.get("/feed/customers.json", headers=bearer(WRONG_TOKEN)).status_code == 401
    assert client.get("/feed/all.json", {"salt": SALT, "hash": stale_hash}).status_code == 401
    assert client.get("/feed/all.json", {"salt": SALT}).status_code == 401
    assert client.get("/feed/customers.json").status_code == 401
    assert client.get("/feed/customers.json", {"limit": "many"}, headers=bearer()).status_code == 400
    assert client.get("/feed/nothing.json", headers=bearer()).status_code == 404
    fake_clerk.behave(VERIFY, "error500")
    assert client.get("/feed/customers.json", headers=bearer("a-fresh-token-Kx7")).status_code == 503
    assert Client().get("/feed/customers.json", {"salt": SALT, "hash": good_hash}, headers=bearer()).status_code == 403

    settings.CLERK_FEED_BASIC_AUTH = f"{BASIC_USER}:{BASIC_PASSWORD}"
    assert (
        client.get("/feed/customers.json", headers={**basic(BASIC_USER, "wrong-Pa55"), **bearer()}).status_code == 401
    )
    assert (
        client.get("/feed/customers.json", headers={**basic(BASIC_USER, BASIC_PASSWORD), **bearer()}).status_code == 200
    )

    # A crash inside the view whose message quotes secrets, as a careless library might.
    settings.CLERK_FEED_BASIC_AUTH = ""

    def crash(*args, **kwargs):
        raise RuntimeError(f"failed for {PEOPLE[0][1]} with Bearer {TEST_TOKEN}")

    monkeypatch.setattr(feed_views, "feed_chunks", crash)
    crashed = client.get("/feed/customers.json", {"salt": SALT, "hash": good_hash}, headers=bearer())
    assert crashed.status_code == 500

    secrets = {
        TEST_TOKEN,
        WRONG_TOKEN,
        "a-fresh-token-Kx7",
        TEST_PRIVATE_KEY,
        SALT,
        good_hash,
        stale_hash,
        BASIC_PASSWORD,
        "wrong-Pa55",
        base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode(),
        token_digest(TEST_TOKEN),
        GUEST_EMAIL,
        *(name for name, _ in PEOPLE),
        *(email for _, email in PEOPLE),
    }
    assert len(written) >= 15  # the access lines, the refusals, django.request's 4xx/5xx lines
    assert any("feed page served" in line for line in written)
    assert any("Internal Server Error" in line for line in written)
    leaks = [(secret, line) for line in written for secret in secrets if secret in line]
    assert leaks == []
    # The project's own code does not even hand a secret to the logging system.
    crash_free = [text for text in raw if "RuntimeError" not in text]
    raw_leaks = [(secret, text) for text in crash_free for secret in secrets if secret in text]
    assert raw_leaks == []
