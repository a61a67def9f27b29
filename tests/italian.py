"""Finding English on an Italian admin page: the vocabulary of the catalogues, the stored data.

`suspects(out)` compiles our catalogues afresh (msgfmt, else the .po text), fails on a stale .mo,
and returns the words of English msgids (ours, Django's admin and auth) that no Italian msgstr
uses. `english_in(html, suspects, data_pattern(stored_texts()), texts)` lists the visible texts
(text nodes, titles, placeholders, button values) that hold one outside the stored data.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import django
from django.apps import apps
from django.conf import settings
from django.db import models

from gdpr.models import REDACTED_EVIDENCE
from tests.gdpr.test_translations import po_entries

BASE = Path(settings.BASE_DIR)
OURS = [
    BASE / "locale",
    BASE / "shop" / "locale",
    BASE / "clerk" / "locale",
    BASE / "gdpr" / "locale",
    BASE / "feeds" / "locale",
]
DJANGO = Path(django.__file__).parent
DJANGOS = [
    DJANGO / "contrib" / "admin" / "locale",
    DJANGO / "contrib" / "auth" / "locale",
    DJANGO / "contrib" / "contenttypes" / "locale",
    DJANGO / "conf" / "locale",
]
WORD = re.compile(r"[A-Za-zÀ-ÿ]{3,}")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}|<[^>]+>")
# Words English and Italian pages share, or names: never a sign of a missing translation.
SHARED = {"clerk", "clerkfeeds", "django", "csv", "http", "https", "url", "json", "email", "feed", "feeds", "gdpr"}


def compiled(mo: Path) -> dict[str, str]:
    """msgid -> its msgstr (the first plural form) of a compiled catalogue."""
    with open(mo, "rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    return {
        key[0] if isinstance(key, tuple) else key: value
        for key, value in catalog.items()
        if key and (not isinstance(key, tuple) or key[1] == 0) and (key[0] if isinstance(key, tuple) else key)
    }


def catalogue(po: Path, out: Path) -> dict[str, str]:
    """The .po file compiled afresh, as `compiled` reads it: by msgfmt (what compilemessages
    runs) where gettext is installed, else read from the .po text (translated entries only)."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        return {k: v for k, v in po_entries(po).items() if v}
    mo = out / (po.stem + ".mo")
    subprocess.run([msgfmt, "--check-format", "-o", str(mo), str(po)], check=True)
    return compiled(mo)


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(PLACEHOLDER.sub(" ", text))}


def vocabulary(out: Path) -> tuple[set[str], set[str]]:
    """(English words of the msgids, Italian words of the msgstrs), our catalogues compiled
    afresh into `out` and compared with the committed .mo files (stale ones fail)."""
    english, italian = set(), set()
    for root in OURS:
        po = root / "it" / "LC_MESSAGES" / "django.po"
        fresh = catalogue(po, out)
        committed = compiled(po.with_suffix(".mo"))
        stale = sorted(k for k in fresh.keys() | committed.keys() if fresh.get(k) != committed.get(k))
        assert not stale, f"{po.with_suffix('.mo')} is stale: run compilemessages ({stale[:3]})"
        for msgid, msgstr in po_entries(po).items() | fresh.items():
            english |= words(msgid)
            if msgstr.strip() != msgid:  # a msgstr copied from the msgid is no translation
                italian |= words(msgstr)
    for root in DJANGOS:
        for po in (root / "it" / "LC_MESSAGES").glob("*.po"):
            for msgid, msgstr in catalogue(po, out).items():
                english |= words(msgid)
                italian |= words(msgstr)
    return english, italian


DATA_APPS = {"shop", "gdpr", "clerk", "feeds", "auth"}


def leaves(value) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.items() for part in item for text in leaves(part)]
    if isinstance(value, list):
        return [text for item in value for text in leaves(item)]
    return [str(value)]


def stored_texts() -> set[str]:
    """The shop's stored texts (names, evidence, JSON translations): data, shown as they are.

    Not the codes of fields with choices (their labels are translated), not the erasure marker
    (shown translated), nor Django's own tables (content types, permissions, log entries)."""
    found = set()
    for model in apps.get_models():
        if model._meta.app_label not in DATA_APPS or model._meta.model_name in {"permission", "group"}:
            continue
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField) and not f.choices
        ]
        for row in model._base_manager.values_list(*fields) if fields else ():
            found |= {text for value in row if value for text in leaves(value) if len(text) >= 3}
    return found - {REDACTED_EVIDENCE}


class VisibleText(HTMLParser):
    """The text a person sees or hovers: text nodes, titles, placeholders, button labels."""

    HIDDEN = {"script", "style", "template", "noscript"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.HIDDEN:
            self.hidden += 1
        for name in ("title", "placeholder", "alt", "aria-label"):
            if attrs.get(name):
                self.parts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.parts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.parts.append(data)


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.parts


def suspects(out: Path) -> set[str]:
    """The words that must not appear on an Italian page outside data."""
    english, italian = vocabulary(out)
    return english - italian - SHARED


def data_pattern(texts: set[str]) -> re.Pattern:
    return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))


def english_in(html: str, english: set[str], data: re.Pattern, texts: set[str]) -> list[str]:
    """The visible texts of the page that hold an English word outside the stored data."""
    found = []
    for part in visible_text(html):
        text = part.strip()
        if text.endswith("…") and any(t.startswith(text[:-1].rstrip()) for t in texts):
            continue  # a stored text cut short in a list cell
        hits = sorted(w for w in words(data.sub(" ", text)) if w in english)
        if hits:
            found.append(f"{text[:120]!r}: {', '.join(hits)}")
    return found
