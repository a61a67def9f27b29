"""`manage.py export_feed TYPE|all --out FILE`: a feed written to a file, atomically."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from tqdm import tqdm

from feeds.errors import FeedError
from feeds.params import FeedParams
from feeds.registry import FEEDS, SINGLE_FEED, feed_class
from feeds.static_export import DEFAULT_MODE, export_feed
from feeds.stream import modified_since


class Command(BaseCommand):
    help = (
        "Write a feed (a type, or 'all' for the single feed) to FILE, exactly as the HTTP feed "
        "serves it: streamed at constant memory, published atomically (a temporary file in the "
        "same directory, fsynced, then renamed), so readers never see a partial file. A name "
        "ending in .gz is gzip-compressed. The file is private to its owner unless --mode says "
        "otherwise (customers and orders are personal data). A progress bar is shown on a "
        "terminal. Exit status: 0 written; 1 nothing written (bad arguments, or the export "
        "failed: the previous file, if any, is left as it was)."
    )

    def add_arguments(self, parser):
        parser.add_argument("feed", choices=[*FEEDS, SINGLE_FEED], help="the feed to write")
        parser.add_argument("--out", required=True, type=Path, help="the file to write (.gz compresses)")
        parser.add_argument("--format", dest="fmt", choices=["json", "ndjson"], default="json")
        parser.add_argument("--language", default=None, help="one of CLERK_LANGUAGES, as the feed's language=")
        parser.add_argument(
            "--modified-after",
            type=int,
            default=None,
            metavar="DAYS",
            help="only objects changed within DAYS days, as the feed's modified_after=",
        )
        parser.add_argument(
            "--mode",
            type=lambda text: int(text, 8),
            default=DEFAULT_MODE,
            help="file permissions, octal (default 600)",
        )

    def handle(self, *args, feed: str, out: Path, fmt: str, language, modified_after, mode: int, **options):
        if feed == SINGLE_FEED and fmt != "json":
            raise CommandError("The single feed 'all' is one JSON object: use --format json.")
        if modified_after is not None and modified_after < 0:
            raise CommandError("--modified-after is a number of days, 0 or more.")
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a directory.")
        params = FeedParams(modified_after=modified_after, language=language)
        bar = self._progress_bar(feed, params)
        try:
            report = export_feed(
                feed, out=out, params=params, fmt=fmt, mode=mode, progress=bar.update_to if bar else None
            )
        except FeedError as exc:
            raise CommandError(exc.detail) from exc
        except Exception as exc:
            raise CommandError(f"export failed, nothing written: {type(exc).__name__}: {exc}") from exc
        finally:
            if bar is not None:
                bar.close()
        size = filesizeformat(report.file_bytes)
        self.stdout.write(
            f"{feed}: {report.objects:,} objects, {size} written to {report.path} in {report.seconds:.1f} s"
        )

    def _progress_bar(self, feed: str, params: FeedParams) -> _ObjectBar | None:
        """A bar of objects written, only on a terminal (cron mails stay clean)."""
        if not sys.stderr.isatty():
            return None
        return _ObjectBar(total=_count(feed, params), desc=feed, unit=" obj", unit_scale=True, file=sys.stderr)


class _ObjectBar(tqdm):
    def update_to(self, objects: int, _bytes: int) -> None:
        self.update(objects - self.n)


def _count(feed: str, params: FeedParams) -> int | None:
    """How many objects the export will write (one COUNT per feed), for the bar's total."""
    names = list(FEEDS) if feed == SINGLE_FEED else [feed]
    total = 0
    for name in names:
        declaration = feed_class(name)(now=timezone.now())
        since = modified_since(declaration.now, params.modified_after)
        total += declaration.selection(modified_since=since).count()
    return total
