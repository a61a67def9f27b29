"""`manage.py rank_index [--rebuild]`: check (or recount) the counts behind exact cold seeks.

The rank index (`feeds.rank_index`) is kept by PostgreSQL triggers in the same transaction as
the rows, so it never drifts in normal operation. Writes made without the triggers (a
`pg_restore --disable-triggers`, a bulk load with triggers disabled, hand edits of
`feeds_rankbucket`) can leave counts too low, and a cold page would then start too late and
skip rows. Run `--rebuild` after any such operation; `clerk_check` runs the check.

Exit status: 0 counts match (or the index does not apply: SQLite), 1 drift or missing triggers
found (without `--rebuild`), 2 a rebuild that did not leave the counts matching.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from feeds import rank_index


class Command(BaseCommand):
    help = "Check the rank index's counts against the catalogue tables, or recount them with --rebuild."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recount every counted table from its rows")

    def handle(self, *args, rebuild: bool = False, **options):
        status = 0
        for model in rank_index.counted_models():
            table = model._meta.db_table
            if rebuild:
                rank_index.rebuild_counts(model)
            armed = rank_index.armed(model)
            if armed is None:
                self.stdout.write(f"{table}: the rank index is not used on this database (cold seeks count keys)")
                continue
            drift = rank_index.count_drift(model)
            if not armed:
                self.stdout.write(
                    self.style.ERROR(f"{table}: counting triggers missing or disabled: run manage.py migrate")
                )
                status = max(status, 2 if rebuild else 1)
            if drift:
                shown = ", ".join(f"bucket {d.bucket}: {d.counted} counted, {d.actual} rows" for d in drift[:5])
                more = f" and {len(drift) - 5} more" if len(drift) > 5 else ""
                self.stdout.write(
                    self.style.ERROR(
                        f"{table}: {len(drift)} bucket(s) drifted ({shown}{more}): run manage.py rank_index --rebuild"
                    )
                )
                status = max(status, 2 if rebuild else 1)
            elif armed:
                self.stdout.write(
                    self.style.SUCCESS(f"{table}: counts match the rows" + (" (recounted)" if rebuild else ""))
                )
        if status:
            raise SystemExit(status)
