"""The consent evidence as CSV, for an audit: one line per ledger record, oldest first per customer.

The header row is in the active language; the cells are the stored codes and UTC ISO 8601 times.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from gdpr.models import ConsentRecord

# The header row, in the active language (the columns' order is the contract, not their names).
HEADER = [
    _("customer id"),
    _("customer name"),
    _("customer email"),
    _("purpose"),
    _("state"),
    _("at"),
    _("source"),
    _("evidence"),
    _("recorded by"),
    _("recorded at"),
    _("evidence redacted at"),
]

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def safe_cell(value: str) -> str:
    """Text as a spreadsheet shows it, never as a formula to evaluate."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def consent_rows(records: QuerySet[ConsentRecord]) -> Iterator[list[str]]:
    """The header, then one row per record (UTC ISO 8601 times)."""
    yield [str(label) for label in HEADER]
    records = records.select_related("customer", "recorded_by").order_by("customer_id", "purpose", "at", "id")
    for r in records.iterator(chunk_size=2000):
        yield [
            str(r.customer_id),
            safe_cell(r.customer.name),
            safe_cell(r.customer.email),
            r.purpose,
            "granted" if r.granted else "withdrawn",
            r.at.isoformat(),
            r.source,
            safe_cell(r.evidence),
            safe_cell(r.recorded_by.get_username()) if r.recorded_by else "",
            r.recorded_at.isoformat(),
            r.redacted_at.isoformat() if r.redacted_at else "",
        ]


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Each row as one CSV line (for a streaming response)."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)
