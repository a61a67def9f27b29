"""Admin: the importer's walks, read-only (they are a record of what Clerk fetched)."""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from feeds.models import ImportRun
from shop.admin import CompactTimesMixin, ReadOnlyMixin, short_text


@admin.register(ImportRun)
class ImportRunAdmin(CompactTimesMixin, ReadOnlyMixin, admin.ModelAdmin):  # a record of what happened
    list_display = (
        "feed",
        "started_at",
        "finished_at",
        "outcome",
        "pages",
        "objects",
        "size",
        "wall_seconds",
        "limit",
        "fmt",
        "short_client",
    )
    list_filter = ("outcome", "feed", "fmt")
    date_hierarchy = "started_at"
    search_fields = ("client",)
    readonly_fields = [f.name for f in ImportRun._meta.fields if f.editable]
    list_per_page = 50

    @admin.display(description=_("client"), ordering="client")
    def short_client(self, run: ImportRun):
        return short_text(run.client, 10)

    @admin.display(description=_("objects"), ordering="object_count")
    def objects(self, run: ImportRun) -> str:
        return f"{run.object_count:,}"

    @admin.display(description=_("size"), ordering="byte_count")
    def size(self, run: ImportRun) -> str:
        return filesizeformat(run.byte_count)

    @admin.display(description=_("duration (s)"))
    def wall_seconds(self, run: ImportRun) -> str:
        wall = run.wall_time
        return "–" if wall is None else f"{wall.total_seconds():.1f}"
