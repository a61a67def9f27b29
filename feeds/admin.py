"""Admin: the importer's walks, read-only (they are a record of what Clerk fetched)."""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from feeds.models import ImportRun
from shop.admin import ReadOnlyMixin


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyMixin, admin.ModelAdmin):  # a record of what happened
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
        "client",
    )
    list_filter = ("outcome", "feed", "fmt")
    date_hierarchy = "started_at"
    search_fields = ("client",)
    readonly_fields = [f.name for f in ImportRun._meta.fields if f.editable]
    list_per_page = 50

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
