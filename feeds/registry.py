"""The registry: a feed's URL name -> its declaration, and what the single feed is made of.

A new feed type is one class in `feeds.declarations` and one entry here.
"""

from __future__ import annotations

from django.db.models import Max

from clerk.outbox import latest_deletion_time
from feeds.base import Feed, unix_time
from feeds.declarations import CategoryFeed, CustomerFeed, OrderFeed, PageFeed, ProductFeed
from feeds.errors import FeedNotFound

# In the order the single feed writes its sections (Clerk's guide).
FEEDS: dict[str, type[Feed]] = {
    feed.name: feed for feed in (ProductFeed, CategoryFeed, OrderFeed, CustomerFeed, PageFeed)
}

# `/feed/all.json`: every feed in one object, plus `config`.
SINGLE_FEED = "all"


def feed_class(name: str) -> type[Feed]:
    """The declaration registered under `name`; `FeedNotFound` when there is none."""
    try:
        return FEEDS[name]
    except KeyError:
        known = ", ".join([*FEEDS, SINGLE_FEED])
        raise FeedNotFound(f"There is no feed named {name!r}; the feeds are {known}.") from None


def data_changed_at() -> int:
    """The single feed's `config.created`: unix time of the newest change in the feeds' data.

    Clerk compares it with the previous import's and skips an unchanged feed, so it must move
    whenever any feed could read differently. It is the newest change time over *all* rows of
    every feed's table, eligible or not: a withdrawal moves the customer's `updated_at` and
    removes them from the feed, and that removal is a change too. A hard deletion or a customer
    ageing out of the GDPR window leaves no row to read: both queue a deletion for Clerk in the
    GDPR outbox, so its newest entry counts as well. 0 when there is no data.
    """
    newest = [
        feed.model._default_manager.aggregate(newest=Max(feed.modified_field))["newest"] for feed in FEEDS.values()
    ]
    newest.append(latest_deletion_time())
    present = [moment for moment in newest if moment is not None]
    return unix_time(max(present)) if present else 0
