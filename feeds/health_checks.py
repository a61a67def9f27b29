"""The feeds' checks in `manage.py clerk_check` (registered with `clerk.health` by FeedsConfig).

check_feeds      the first page of every feed passes Clerk's rules (one result per feed)
check_imports    the newest complete walk of each feed by Clerk's importer, and staleness
check_rank_index the counts behind exact cold seeks match the catalogue
register()       adds them to clerk_check's registry
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from clerk.health import Level, Options, Result, guarded, register_check
from feeds import rank_index, walks
from feeds.params import FeedParams
from feeds.registry import FEEDS, SINGLE_FEED
from feeds.rules import ATTRIBUTE_NAME_RE, feed_errors
from feeds.stream import feed_chunks
from shop.models import validate_translations


def register() -> None:
    register_check("feeds", check_feeds, order=50)
    register_check("imports", check_imports, order=80)
    register_check("rank_index", check_rank_index, order=90)


# --- feeds ---------------------------------------------------------------------------------------
def sample_objects(name: str, *, size: int) -> list[dict[str, Any]]:
    """The first page of feed `name` (`size` objects), exactly as the importer would get it."""
    return orjson.loads(b"".join(feed_chunks(name, params=FeedParams(limit=size))))


def stored_data_problems(name: str, objects: list[dict[str, Any]]) -> list[str]:
    """Stored values behind `objects` that the feed had to leave out, and why.

    A feed leaves out an extra attribute Clerk would refuse (a name outside
    `^[A-Za-z0-9_]+$`, a value of no Clerk type) rather than break the whole feed, so such a row
    never shows in the objects themselves: it is found here, by comparing with what is stored.
    Malformed translations (the feed falls back to the base text) are reported too.
    """
    feed = FEEDS[name]
    stored_fields = {f.name for f in feed.model._meta.fields} & {"attributes", "translations"}
    if not stored_fields or not objects:
        return []
    by_id = {obj["id"]: obj for obj in objects}
    rows = feed.model._default_manager.filter(pk__in=list(by_id)).order_by("pk").values("pk", *stored_fields)
    problems = []
    for row in rows:
        obj = by_id[row["pk"]]
        for attribute in row.get("attributes") or {}:
            if attribute in obj or attribute in feed.standard_attributes:
                continue
            if not isinstance(attribute, str) or not ATTRIBUTE_NAME_RE.fullmatch(attribute):
                why = "its name is not made of A-Z, a-z, 0-9 and _"
            else:
                why = "its value is of no type Clerk takes"
            problems.append(f"{name} id {row['pk']}: attribute {attribute!r} left out of the feed: {why}")
        if "translations" in row:
            try:
                validate_translations(row["translations"])
            except ValidationError as exc:
                problems.append(f"{name} id {row['pk']}: translations malformed: {'; '.join(exc.messages)}")
    return problems


def check_feeds(options: Options) -> list[Result]:
    """The first page of every feed passes Clerk's rules (`feeds.rules`), one result per feed."""
    languages = tuple(settings.CLERK_LANGUAGES)
    results = []
    for name in FEEDS:
        results.append(guarded(f"feed:{name}", lambda name=name: _check_one_feed(name, options.sample, languages)))
    return results


def _check_one_feed(name: str, size: int, languages: tuple[str, ...]) -> Result:
    check = f"feed:{name}"
    objects = sample_objects(name, size=size)
    errors = feed_errors(name, objects, languages=languages)
    if errors:
        return Result(
            check,
            Level.FAILURE,
            f"{len(errors)} violation(s) of Clerk's rules in the first {len(objects)} object(s)",
            tuple(errors),
        )
    if not objects:
        if name == "products":
            return Result(check, Level.WARNING, "the products feed is empty: Clerk would delete every product it holds")
        return Result(check, Level.OK, "empty")
    problems = stored_data_problems(name, objects)
    if problems:
        return Result(
            check,
            Level.WARNING,
            f"first {len(objects)} object(s) valid, but {len(problems)} stored value(s) break Clerk's rules",
            tuple(problems),
        )
    return Result(check, Level.OK, f"first {len(objects)} object(s) valid")


# --- import runs -------------------------------------------------------------------------------
def check_imports(options: Options) -> Result:
    """What Clerk fetched lately: the newest complete walk per feed (information, and staleness)."""
    now = timezone.now()
    latest = walks.latest_complete_walks()
    failed = walks.feeds_whose_latest_walk_failed()
    details = tuple(latest[name].describe(now=now) for name in [*FEEDS, SINGLE_FEED] if name in latest)
    details += tuple(f"{name}: latest walk failed" for name in failed)
    max_age = dt.timedelta(hours=options.import_max_age_hours)
    stale = [name for name, walk in latest.items() if now - walk.finished_at > max_age]
    problems = []
    if stale:
        problems.append(f"no complete import for {options.import_max_age_hours} h: {', '.join(stale)}")
    if failed:
        problems.append(f"latest walk failed: {', '.join(failed)}")
    if problems:
        return Result("imports", Level.WARNING, "; ".join(problems), details)
    if not latest:
        return Result("imports", Level.OK, "no complete import by Clerk recorded yet")
    return Result("imports", Level.OK, f"{len(latest)} feed(s) imported by Clerk", details)


# --- rank index --------------------------------------------------------------------------------
def check_rank_index(options: Options) -> Result:
    """The counts behind exact cold seeks match the catalogue's rows (see `feeds.rank_index`):
    counts that are too low would make a cold page skip rows, so drift is a failure."""
    problems: list[str] = []
    checked: list[str] = []
    for model in rank_index.counted_models():
        table = model._meta.db_table
        armed = rank_index.armed(model)
        if armed is None:
            continue
        if not armed:
            problems.append(f"{table}: counting triggers missing or disabled (run manage.py migrate)")
            continue
        drift = rank_index.count_drift(model) or []
        if drift:
            problems.append(f"{table}: {len(drift)} bucket(s) drifted from the rows")
        checked.append(table)
    if problems:
        return Result(
            "rank_index",
            Level.FAILURE,
            "rank index out of step with the catalogue: run manage.py rank_index --rebuild",
            tuple(problems),
        )
    if not checked:
        return Result("rank_index", Level.OK, "not used on this database: cold seeks count keys")
    return Result("rank_index", Level.OK, f"counts match the rows of {', '.join(checked)}")
