"""URL configuration: the admin and the feeds."""

from django.contrib import admin
from django.urls import include, path

from clerkfeeds import health
from feeds.openapi import openapi_document

# The admin is this service's own: its name in the header, and no "View site" (the shop is elsewhere).
admin.site.site_header = "clerkfeeds"
admin.site.site_title = "clerkfeeds"
admin.site.site_url = None

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("openapi.json", openapi_document, name="openapi"),
    path("admin/", admin.site.urls),
    path("", include("feeds.urls")),
]

# Under /feed/ even Django's own 400, 404 and 500 answer with the feed contract's JSON error.
handler400 = "feeds.views.bad_request"
handler404 = "feeds.views.page_not_found"
handler500 = "feeds.views.server_error"
