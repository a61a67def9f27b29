"""The feed query: `limit`, `offset`, `modified_after`, `language` (DESIGN.md, "HTTP contract").

`parse_params(query)` gives a `FeedParams` or raises `BadParameter` (400) with a stable code and
a sentence saying what to send instead: nothing is clamped or ignored, except unknown
parameters. `check_language(language)` is the one rule for `language` (one of
`CLERK_LANGUAGES`), also applied to params built directly. The decisions where the contract is
silent are listed in docs/feeds.md, "Parameters".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

from feeds.errors import BadParameter

PARAMETERS = ("limit", "offset", "modified_after", "language")

# Beyond this an offset cannot name a row any database holds (and would overflow SQL's bigint).
MAX_OFFSET = 2**62
# More days than that reach before year 1: "changed within N days" is then every object.
_MAX_DIGITS = 19

_DIGITS = re.compile(r"[0-9]+")
_NEGATIVE = re.compile(r"-[0-9]+")


@dataclass(frozen=True)
class FeedParams:
    """A parsed, valid feed query.

    limit:           objects per page; None streams the whole feed.
    offset:          index of the first object of the page (0 without paging).
    modified_after:  only objects changed within this many days; None: every object.
    language:        render the text attributes in this one language; None: the configured mode.
    """

    limit: int | None = None
    offset: int = 0
    modified_after: int | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.offset < 0:
            raise ValueError("offset must not be negative")
        if self.modified_after is not None and self.modified_after < 0:
            raise ValueError("modified_after must not be negative")

    @property
    def paged(self) -> bool:
        return self.limit is not None

    def walk(self) -> dict[str, Any]:
        """What every page of one importer walk shares: the query without its offset."""
        return {"limit": self.limit, "modified_after": self.modified_after, "language": self.language}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_params(query: Mapping[str, Sequence[str]]) -> FeedParams:
    """Parse a query (a `QueryDict`, or any mapping of name -> list of values) into `FeedParams`.

    Reads `CLERK_FEED_MAX_LIMIT`, `CLERK_FEED_DEFAULT_LIMIT` and `CLERK_LANGUAGES` at call time.
    """
    values = {name: _single(query, name) for name in PARAMETERS}
    max_limit = settings.CLERK_FEED_MAX_LIMIT

    limit = _integer("limit", values["limit"])
    if limit is not None:
        if limit < 1:
            raise BadParameter(f"limit must be at least 1 (got {values['limit']}).", code="limit_too_small")
        if limit > max_limit:
            # Never clamped: a clamped page looks complete and the importer would skip rows.
            raise BadParameter(
                f"limit must be at most {max_limit} (got {values['limit']}); page with a smaller limit.",
                code="limit_too_large",
            )

    offset = _integer("offset", values["offset"])
    if offset is None:
        offset = 0
    elif offset < 0:
        raise BadParameter(f"offset must be 0 or more (got {values['offset']}).", code="offset_negative")
    elif offset > MAX_OFFSET:
        raise BadParameter(f"offset must be at most {MAX_OFFSET}.", code="offset_too_large")
    elif limit is None:
        limit = min(settings.CLERK_FEED_DEFAULT_LIMIT, max_limit)

    days = _integer("modified_after", values["modified_after"])
    if days is not None and days < 0:
        raise BadParameter(
            f"modified_after is a number of days, 0 or more (got {values['modified_after']}).",
            code="modified_after_negative",
        )

    language = values["language"]
    check_language(language)

    return FeedParams(limit=limit, offset=offset, modified_after=days, language=language)


def check_language(language: str | None) -> None:
    """`BadParameter` unless `language` is None or one of `CLERK_LANGUAGES` (read at call time)."""
    if language is None:
        return
    languages = list(settings.CLERK_LANGUAGES)
    if language not in languages:
        if languages:
            detail = f"language must be one of {', '.join(languages)} (got {language!r})."
        else:
            detail = "This shop's feeds are single-language (CLERK_LANGUAGES is empty): drop language."
        raise BadParameter(detail, code="unknown_language")


def _single(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The one value of `name`, None when absent or empty; `repeated_parameter` when given twice."""
    if hasattr(query, "getlist"):
        values = list(query.getlist(name))
    else:
        value = query.get(name)
        values = [] if value is None else [value] if isinstance(value, str) else list(value)
    if len(values) > 1:
        raise BadParameter(f"{name} was given {len(values)} times; give it once.", code="repeated_parameter")
    if not values or values[0] == "":
        return None
    return values[0]


def _integer(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if _NEGATIVE.fullmatch(raw):
        return -1 if len(raw) > _MAX_DIGITS else int(raw)
    if not _DIGITS.fullmatch(raw):
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise BadParameter(
            f"{name} must be a whole number written in digits (got {shown!r}).", code=f"{name}_not_integer"
        )
    if len(raw.lstrip("0")) > _MAX_DIGITS:
        return 10**_MAX_DIGITS  # larger than every cap; spares int() a huge string
    return int(raw)
