"""`manage.py import_shop FILE|-`: load the shop's data from a feed-shaped file.

A thin wrapper over `shop.importing` that hands it the consent ledger registered through
`shop.consent_hook`. Without one, a file holding customers or orders is refused whole (exit 2,
nothing written); the catalogue types are imported as usual. The run's changes are pushed to
Clerk (`shop.change_hook.import_run`) unless `--no-push` or too many changed; it says which.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from shop.change_hook import import_run
from shop.consent_hook import PERSONAL_TYPES, consent_ledger
from shop.importfile import ImportFile, UnreadableFile
from shop.importing import DEFAULT_BATCH_SIZE, RefusedTypes, import_file
from shop.validation import TYPES, Problem

EXIT_OK, EXIT_REJECTED, EXIT_UNREADABLE = 0, 1, 2


class Command(BaseCommand):
    help = (
        "Import products, categories, pages, customers and orders (with consents) from FILE, or "
        "from standard input with '-'. FILE is the single-feed object "
        '{"categories": [...], "products": [...], "pages": [...], "customers": [...], '
        '"orders": [...], "config": {...}}, or, with --type, a JSON array or NDJSON (one object '
        "per line) of one type. Objects are upserted by id in batches, one transaction each; "
        "importing the same file twice changes nothing. Each rejected object is reported on "
        "stderr with its line (NDJSON) or index (JSON), id, field and reason; a summary line "
        "follows on stdout. Exit status: 0 everything imported; 1 some objects were rejected "
        "(the others were imported); 2 the file could not be imported at all (missing, empty, "
        "not JSON, cut off, wrong shape): nothing was written."
    )
    # Tests pass standard input as an option: call_command("import_shop", "-", stdin=...).
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="the file to import, or - for standard input")
        parser.add_argument(
            "--type",
            choices=TYPES,
            dest="type_name",
            help="the type of every object in a JSON array or NDJSON file",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"objects per transaction (default {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--no-push",
            action="store_true",
            help="queue no push of the changed objects to Clerk (an initial import: Clerk's next "
            "import of the feeds brings them); without it a type with more than 10%% of its rows "
            "changed is not pushed either",
        )

    def handle(self, *args, file, type_name, batch_size, no_push=False, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1", returncode=EXIT_UNREADABLE)
        terminal = self.stderr.isatty()
        reporter = _StderrReporter(self.stderr, terminal=terminal)
        progress = _progress_bar if terminal else None
        ledger = consent_ledger()
        # Fail closed: personal data is never imported as if consent handling did not exist.
        only = None if ledger is not None else [t for t in TYPES if t not in PERSONAL_TYPES]
        try:
            with (
                import_run(push=not no_push) as pushes,
                ImportFile(file, type_name=type_name, stdin=options.get("stdin")) as source,
            ):
                result = import_file(
                    source,
                    reporter=reporter,
                    ledger=ledger,
                    batch_size=batch_size,
                    progress=progress,
                    only=only,
                )
        except RefusedTypes as exc:
            raise CommandError(
                f"{exc}: personal data needs consent handling, and no consent ledger is registered "
                "(shop.consent_hook); nothing was imported",
                returncode=EXIT_UNREADABLE,
            ) from exc
        except UnreadableFile as exc:
            raise CommandError(f"{exc}; nothing was imported", returncode=EXIT_UNREADABLE) from exc
        self.stdout.write(f"import_shop: {result.summary()}")
        for line in pushes.lines:
            self.stdout.write(f"push: {line}")
        if result.rejected:
            raise CommandError(
                f"{result.rejected} object(s) rejected (see above); the others were imported",
                returncode=EXIT_REJECTED,
            )


class _StderrReporter:
    """Bad rows on stderr, one line each; around a progress bar when on a terminal."""

    def __init__(self, stderr, *, terminal: bool):
        self.stderr = stderr
        self.terminal = terminal

    def rejected(self, type_name: str, where: str, object_id: int | None, problems: list[Problem]) -> None:
        who = f" (id {object_id})" if object_id is not None else ""
        reasons = "; ".join(str(p) for p in problems)
        self._write(f"rejected {type_name} at {where}{who}: {reasons}")

    def warning(self, message: str) -> None:
        self._write(f"warning: {message}")

    def _write(self, line: str) -> None:
        if self.terminal:
            tqdm.write(line, file=sys.stderr)
        else:
            self.stderr.write(line)


def _progress_bar(label: str, total: int | None):
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False, file=sys.stderr)
