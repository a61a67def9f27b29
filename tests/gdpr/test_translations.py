"""The Italian catalogues are complete and their compiled .mo files match the .po sources."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

CATALOGUES = [
    Path(settings.BASE_DIR) / "gdpr" / "locale" / "it" / "LC_MESSAGES",  # the GDPR app's strings
    Path(settings.BASE_DIR) / "locale" / "it" / "LC_MESSAGES",  # project-wide: the shop models
    Path(settings.BASE_DIR) / "feeds" / "locale" / "it" / "LC_MESSAGES",  # import runs, rank index
    Path(settings.BASE_DIR) / "clerk" / "locale" / "it" / "LC_MESSAGES",  # the outbox and its admin
]


def po_entries(path: Path) -> dict[str, str]:
    """msgid -> msgstr (msgstr[0] for plurals), multi-line strings joined."""
    entries, key, field = {}, None, None
    text = path.read_text(encoding="utf-8")
    for block in text.split("\n\n"):
        parts: dict[str, str] = {}
        for line in block.splitlines():
            m = re.match(r'^(msgid|msgid_plural|msgstr(?:\[0\])?|msgstr\[\d\]) "(.*)"$', line)
            if m:
                field = m.group(1)
                parts[field] = m.group(2)
            elif line.startswith('"') and field:
                parts[field] += line[1:-1]
        if parts.get("msgid"):
            key = parts["msgid"].encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
            entries[key] = parts.get("msgstr", parts.get("msgstr[0]", ""))
    return entries


@pytest.mark.parametrize("directory", CATALOGUES, ids=["gdpr", "project", "feeds", "clerk"])
def test_every_string_is_translated_and_compiled(directory):
    entries = po_entries(directory / "django.po")
    assert entries and all(entries.values()), [k for k, v in entries.items() if not v]
    with open(directory / "django.mo", "rb") as mo:
        catalogue = gettext.GNUTranslations(mo)
    compiled = {k if isinstance(k, str) else k[0] for k in catalogue._catalog if k}
    assert set(entries) <= compiled, "django.mo is stale: run `manage.py compilemessages -l it`"
