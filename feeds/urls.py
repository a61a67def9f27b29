"""Feed URLs (DESIGN.md, "HTTP contract").

/feed/<type>.json     a JSON array (or NDJSON with `Accept: application/x-ndjson`)
/feed/<type>.ndjson   one object per line
/feed/all.json        the single feed
/feed/<anything else> a JSON 404, after authentication
"""

from django.urls import path, re_path

from feeds.views import FeedView, UnknownFeedView

app_name = "feeds"

urlpatterns = [
    path("feed/<slug:feed>.json", FeedView.as_view(), {"fmt": "json"}, name="feed"),
    path("feed/<slug:feed>.ndjson", FeedView.as_view(), {"fmt": "ndjson"}, name="feed-ndjson"),
    re_path(r"^feed/", UnknownFeedView.as_view(), {"feed": None, "fmt": None}, name="unknown"),
]
