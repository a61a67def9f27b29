"""What the feeds app stores: the record of the importer's walks, for ops.

A walk is one importer crawl of one feed: the page at offset 0, then each next page with the
same limit and query, up to the short or empty page that ends it (or a single response when the
whole feed is streamed without `limit`). `feeds.walks` writes these rows from the
`page_served` signal; the admin lists them and `clerk_check` summarises them.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportRun(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running", _("running")
        OK = "ok", _("complete")
        FAILED = "failed", _("failed")
        # A new walk of the same feed by the same client began before this one reached its end.
        ABANDONED = "abandoned", _("abandoned")

    feed = models.CharField(_("feed"), max_length=32)
    fmt = models.CharField(_("format"), max_length=8)
    client = models.CharField(
        _("client"), max_length=128, blank=True, help_text=_("An opaque identity of the caller, never a token.")
    )
    limit = models.PositiveIntegerField(
        _("limit"), null=True, blank=True, help_text=_("Empty: the whole feed in one response.")
    )
    params = models.JSONField(
        _("query"), default=dict, blank=True, help_text=_("The query without paging or credentials.")
    )
    # A digest of `params`, so that "the same walk" is an indexed equality, not a JSON comparison.
    params_key = models.CharField(max_length=64, editable=False)

    started_at = models.DateTimeField(_("started at"))
    last_page_at = models.DateTimeField(_("last page at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)

    pages = models.PositiveIntegerField(_("pages"), default=0)
    object_count = models.PositiveBigIntegerField(_("objects"), default=0)
    byte_count = models.PositiveBigIntegerField(_("bytes"), default=0)
    serving_seconds = models.FloatField(
        _("serving time (s)"), default=0.0, help_text=_("Time spent producing the pages, summed.")
    )
    # The offset the walk's next page must ask for; a page at any other offset is not this walk's.
    next_offset = models.PositiveBigIntegerField(_("next offset"), default=0)

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-started_at", "-id"]
        indexes = [
            # The per-page lookup: the running walk of this feed, client and query.
            models.Index(fields=["outcome", "feed", "client", "params_key"], name="importrun_open_walk"),
            # "Latest complete walk per feed".
            models.Index(fields=["feed", "outcome", "finished_at"], name="importrun_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.feed} {self.started_at:%Y-%m-%d %H:%M} ({self.get_outcome_display()})"

    @property
    def wall_time(self) -> dt.timedelta | None:
        """From the first page's start to the end of the last page, once finished."""
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class RankBucket(models.Model):
    """How many rows of a catalogue table have primary keys in one bucket of ids (`feeds.rank_index`).

    A bucket is `id >> SHIFT`: the ids from `bucket << SHIFT` to `(bucket << SHIFT) | (2**SHIFT - 1)`.
    Written only by PostgreSQL triggers on the counted tables, in the same transaction as the
    rows they count (migration `0002_rank_buckets`); never by Django code. A bucket whose count
    falls to zero is deleted.
    """

    table_name = models.CharField(_("table"), max_length=63)
    bucket = models.BigIntegerField(_("bucket"))
    # At most 2**SHIFT: an integer, whose sum PostgreSQL adds up faster than a bigint's (numeric).
    row_count = models.IntegerField(_("rows"))

    class Meta:
        verbose_name = _("rank bucket")
        verbose_name_plural = _("rank buckets")
        constraints = [
            # The triggers' ON CONFLICT target, and the seek's ordered scan of one table's buckets.
            models.UniqueConstraint(fields=["table_name", "bucket"], name="rankbucket_table_bucket"),
        ]

    def __str__(self) -> str:
        return f"{self.table_name} bucket {self.bucket}: {self.row_count}"


class FeedListing(models.Model):
    """A row of a personal feed (customers, orders) that holds a position in its walks (`feeds.listing`).

    Positions are these rows in id order, listed or not: a cold page at offset O starts after the
    row at position O - 1. `listed` rows bound the pages; a row the policy no longer admits is
    unlisted (`left_at`) by `feeds.listing.refresh` and removed `LONGEST_WALK` later, so no walk
    under way loses a position. The feed's live query still decides what is served.
    """

    feed = models.CharField(_("feed"), max_length=16)
    object_id = models.BigIntegerField(_("object id"))
    listed = models.BooleanField(_("listed"), default=True)
    left_at = models.DateTimeField(_("left the feed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("feed listing")
        verbose_name_plural = _("feed listings")
        constraints = [
            # The upsert's target, and the cold seek's index-only count of positions.
            models.UniqueConstraint(fields=["feed", "object_id"], name="feedlisting_row"),
        ]
        indexes = [
            # A page's bounds: the listed rows after a key.
            models.Index(fields=["feed", "object_id"], condition=models.Q(listed=True), name="feedlisting_listed"),
        ]

    def __str__(self) -> str:
        return f"{self.feed} {self.object_id}"
