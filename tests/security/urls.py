"""A stand-in feed view for the security tests, registered only here.

It is built the way the feeds app builds its views (a DRF APIView under /feed/ that relies on
REST_FRAMEWORK's default authentication and permission classes and on the project's exception
handler), so the tests prove the security layer independently of what the real feeds serve.
"""

import orjson
from django.http import HttpResponse
from django.urls import path, re_path
from rest_framework.views import APIView

FEED_MARKER = "feed-row-marker"


class StandInFeed(APIView):
    def get(self, request, name: str = "all", fmt: str = "json"):
        rows = [{"id": 1, "name": FEED_MARKER, "client": request.clerk_client_id}]
        return HttpResponse(orjson.dumps(rows), content_type="application/json")


urlpatterns = [
    path("feed/all.json", StandInFeed.as_view()),
    re_path(r"^feed/(?P<name>[a-z]+)\.(?P<fmt>json|ndjson)$", StandInFeed.as_view()),
]
