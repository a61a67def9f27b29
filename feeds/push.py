"""A push's objects, rendered by the feeds' own code: what `clerk` sends is what a feed serves.

`render_objects(*, object_type, ids, now)` -> {id: the object's JSON bytes}, for those of `ids`
the feed of `object_type` serves at `now` (its `rows()`: the GDPR policy for customers and
orders), in the feed's language mode and encoding (`feeds.encoding`), byte for byte what the
feed writes for the same rows. Personal objects are recorded as held by Clerk
(`gdpr.holdings`) before their bytes exist, as a feed page records them. Registered with
`clerk.hooks.renders` by `FeedsConfig.ready`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import orjson
from django.conf import settings

from feeds.encoding import exact_decimal
from feeds.registry import feed_class
from gdpr.holdings import record_handed_out


def render_objects(*, object_type: str, ids: Collection[int], now: dt.datetime) -> dict[int, bytes]:
    feed = feed_class(object_type)(now=now, languages=tuple(settings.CLERK_LANGUAGES))
    pk_name = feed.pk_name()
    rows = list(feed.selection().filter(**{f"{pk_name}__in": list(ids)}).values(*feed.read_columns()))
    if not rows:
        return {}
    if feed.personal:
        record_handed_out(object_type=feed.name, ids=[row[pk_name] for row in rows])
    objects = feed.objects(rows)
    return {row[pk_name]: orjson.dumps(obj, default=exact_decimal) for row, obj in zip(rows, objects, strict=True)}
