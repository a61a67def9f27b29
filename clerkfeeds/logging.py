"""Log redaction: a last line of defence so that secrets and personal data never reach a log.

Code must not log tokens, hashes, salts, emails or names in the first place; `RedactingFilter`,
installed on every handler (settings.LOGGING), scrubs what slips through anyway. It rewrites
the record in place: the message, the exception and stack text, and every `extra` attribute.
Helpers: `redact(text)`, `redact_value(value, name)`; `SENSITIVE_NAMES`, `REDACTED`. Names are
only caught as dict/JSON fields: the real rule is that feed code never logs an object's fields.

See docs/security.md ("Log redaction").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

REDACTED = "[redacted]"

# Field names whose values are secret or personal wherever they appear (extra, dicts, JSON).
SENSITIVE_NAMES = frozenset(
    {
        "token", "hash", "salt", "key", "private_key", "public_key", "secret", "password",
        "authorization", "x_clerk_authorization", "http_authorization",
        "http_x_clerk_authorization", "cookie", "email", "name", "first_name", "last_name",
    }
)  # fmt: skip

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _keep_group(group: int) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m.group(group)}{REDACTED}"


_RULES: tuple[_Rule, ...] = (
    # A header in any rendering: "X-Clerk-Authorization: Bearer x", "'HTTP_AUTHORIZATION': 'Basic x'".
    (
        re.compile(r"(?i)\b((?:http_)?(?:x[-_]clerk[-_])?authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n,}]+"),
        _keep_group(1),
    ),
    # Credentials after their scheme, wherever they are. Base64 always has a capital or a digit
    # somewhere; prose ("basic auth") does not, and stays readable.
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/-]+=*"), _keep_group(1)),
    (re.compile(r"\b([Bb]asic\s+)(?=[a-z]*[A-Z0-9+/])[A-Za-z0-9+/]+=*"), _keep_group(1)),
    # Query or form parameters: salt=, hash=, token=, private_key=, email=, password=, …
    (
        re.compile(r"(?i)\b([A-Za-z_]*(?:salt|hash|token|key|secret|password|passwd|signature|email)=)[^&\s\"'>]+"),
        _keep_group(1),
    ),
    # JSON or Python-repr fields: "token": "…", 'email': '…', "name": "…".
    (
        re.compile(
            r"(?i)([\"'](?:[a-z_]*token|hash|salt|[a-z_]*key|secret|password|email|[a-z_]*name|"
            r"authorization)[\"']\s*:\s*)([\"'])(?:\\.|(?!\2).)*\2"
        ),
        lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}",
    ),
    # JWTs (Clerk's tokens may be one).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), lambda m: REDACTED),
    # Email addresses anywhere.
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), lambda m: REDACTED),
    # Long hex digests: feed hashes (SHA-512), token digests (SHA-256).
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), lambda m: REDACTED),
)


def redact(text: str) -> str:
    """Replace every secret-looking part of `text`."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: object, name: str | None = None) -> object:
    """A copy of `value` safe to log: sensitive names masked, strings scrubbed, containers walked."""
    if name is not None and name.lower().replace("-", "_") in SENSITIVE_NAMES:
        return REDACTED
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(v) for v in value]
    if _is_request(value):
        # Method and path only: the query string may hold salt/hash, META holds the token.
        return f"{value.method} {redact(value.path)}"
    return redact(str(value))


def _is_request(value: object) -> bool:
    return hasattr(value, "META") and hasattr(value, "path") and hasattr(value, "method")


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Scrub the message, the exception and stack text and every `extra` attribute of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, Mapping) and not record.args:
            record.msg = redact_value(record.msg)
        else:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string must not drop the record
                message = str(record.msg)
            record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        # Formatters (the JSON one included) would render exc_info afresh, unredacted; they all
        # fall back to exc_text without it.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for attribute in set(vars(record)) - _STANDARD:
            setattr(record, attribute, redact_value(getattr(record, attribute), attribute))
        return True
