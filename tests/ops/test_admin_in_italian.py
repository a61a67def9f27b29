"""Every admin page of the demo shop, rendered in Italian, shows no English (apart from data).

The catalogues are compiled afresh (msgfmt) and must match the committed .mo files. Then the
demo shop is seeded, its outbox delivered to the fake Clerk, a feed walked and an audited action
run; every page a shop admin reaches is rendered with `Accept-Language: it`. Its visible text
(text nodes, titles, placeholders, button values) must hold no English word: a word of an English
msgid (ours and Django's admin) that no Italian translation uses and no stored data contains.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import models
from django.urls import reverse

from clerk.delivery import deliver_pending
from gdpr.models import REDACTED_EVIDENCE, Purpose, Source
from shop.models import Customer
from tests.conftest import HTTPSClient
from tests.gdpr.test_translations import po_entries

pytestmark = pytest.mark.django_db

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


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    """(English words of the msgids, Italian words of the msgstrs); ours compared with the .mo files."""
    out = tmp_path_factory.mktemp("mo")
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


@pytest.fixture
def demo_shop(fake_clerk, feed_client):
    call_command("seed_demo", products=15, customers=12, orders=40, stdout=open("/dev/null", "w"))
    deliver_pending()  # delivered rows and their attempts, at the fake Clerk
    assert feed_client.get("/feed/products.json").status_code == 200  # an import run
    return get_user_model().objects.create_superuser("boss", "boss@shop.example", "pw")


def admin_pages(client) -> list[tuple[str, str]]:
    """(description, url) of every page of the admin's registered models and apps."""
    pages = [("index", reverse("admin:index")), ("password change", reverse("admin:password_change"))]
    app_labels = sorted({model._meta.app_label for model in admin.site._registry})
    pages += [(f"app {label}", reverse("admin:app_list", args=[label])) for label in app_labels]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append((f"{info} list", reverse("admin:{}_{}_changelist".format(*info))))
        pages.append((f"{info} search", reverse("admin:{}_{}_changelist".format(*info)) + "?q=zzz"))
        if model_admin.has_add_permission(_Request()):
            pages.append((f"{info} add", reverse("admin:{}_{}_add".format(*info))))
        objects = list(model._default_manager.order_by("pk").values_list("pk", flat=True)[:1])
        objects += list(model._default_manager.order_by("-pk").values_list("pk", flat=True)[:1])
        for pk in dict.fromkeys(objects):
            pages.append((f"{info} {pk}", reverse("admin:{}_{}_change".format(*info), args=[pk])))
            pages.append((f"{info} {pk} history", reverse("admin:{}_{}_history".format(*info), args=[pk])))
    return pages


class _Request:
    """Enough of a request for a superuser's permission checks."""

    class user:
        is_active = is_superuser = is_staff = True

        @staticmethod
        def has_perm(perm, obj=None):
            return True


def test_every_admin_page_of_the_demo_shop_is_in_italian(demo_shop, vocabulary):
    english, italian = vocabulary
    texts = stored_texts() | {demo_shop.username}  # before erasure redacts some of it
    client = HTTPSClient(headers={"accept-language": "it"})
    anonymous = client.get(reverse("admin:login"))
    client.force_login(demo_shop)
    pages = [("login", anonymous)]
    for name, url in admin_pages(client):
        response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        pages.append((name, response))

    # The consent actions' pages: the forms, every error at once, the messages after them.
    live = Customer.objects.filter(erased_at__isnull=True).order_by("pk")
    erased = Customer.objects.filter(erased_at__isnull=False).first()
    changelist = reverse("admin:shop_customer_changelist")
    selection = {"_selected_action": [live[0].pk, erased.pk]}
    for action in ("record_grant", "record_withdrawal", "erase_selected"):
        pages.append((action, client.post(changelist, {"action": action, **selection})))
    errors = {"apply": "1", "purpose": Purpose.THIRD_PARTY_SHARING, "at_0": "2999-01-01", "at_1": "00:00"}
    pages.append(("form errors", client.post(changelist, {"action": "record_withdrawal", **selection, **errors})))
    done = {"apply": "1", "purpose": Purpose.THIRD_PARTY_SHARING, "at_0": "2024-01-01", "at_1": "00:00"}
    done |= {"source": Source.ADMIN, "evidence": "ticket 12"}
    pages.append(
        ("withdrawal done", client.post(changelist, {"action": "record_withdrawal", **selection, **done}, follow=True))
    )
    pages.append(
        (
            "erasure done",
            client.post(
                changelist, {"action": "erase_selected", "_selected_action": [live[1].pk], "confirm": "1"}, follow=True
            ),
        )
    )
    pages.append(("after erasure", client.get(changelist)))
    pages.append(("erased customer", client.get(reverse("admin:shop_customer_change", args=[live[1].pk]))))
    pages.append(("audit trail", client.get(reverse("admin:admin_logentry_changelist"))))

    texts |= stored_texts()
    data = re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))
    suspects = english - italian - SHARED
    problems = {}
    for name, response in pages:
        assert response.status_code == 200, name
        found = english_in(response.content.decode(), suspects, data, texts)
        if found:
            problems[name] = found
    assert not problems, "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items())
