"""Log redaction: a last line of defence so that secrets and personal data never reach a log.

Code must not log tokens, hashes, emails or names in the first place; this filter scrubs what
slips through anyway (a third-party library's message, an exception text quoting a URL).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization headers of any scheme, and Clerk's own header.
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    # salt/hash/token/key query or form parameters.
    re.compile(r"(?i)\b(salt|hash|token|private_key|key|password|email)=[^&\s\"']+"),
    # JSON fields holding secrets.
    re.compile(r'(?i)"(token|private_key|key|password|email|name)"\s*:\s*"[^"]*"'),
    # Email addresses anywhere.
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    # Long hex digests (SHA-256/512 of tokens or feed hashes).
    re.compile(r"\b[0-9a-fA-F]{40,}\b"),
)

# Attributes a caller may attach with `extra=` that must never be written.
_FORBIDDEN_EXTRA = {"token", "hash", "salt", "email", "password", "private_key", "authorization"}


def redact(text: str) -> str:
    """Replace every secret-looking part of `text`."""
    for pattern in _PATTERNS:
        text = pattern.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    whole = match.group(0)
    if match.re.pattern.startswith("(?i)\\b(bearer"):
        return f"{match.group(1)} {REDACTED}"
    if "=" in whole and not whole.startswith('"'):
        return f"{whole.split('=', 1)[0]}={REDACTED}"
    if whole.startswith('"'):
        return f'"{match.group(1)}": "{REDACTED}"'
    return REDACTED


class RedactingFilter(logging.Filter):
    """Scrub the rendered message, the exception text and forbidden `extra` attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
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
        for attribute in _FORBIDDEN_EXTRA & set(vars(record)):
            setattr(record, attribute, REDACTED)
        return True
