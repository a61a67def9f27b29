"""The peer's settings: the project's own, with the peer's urlconf and DRF's limit/offset paging.

Same database, cache, middleware and environment as the project, so the only difference the
benchmark sees is how a page is produced.
"""

from clerkfeeds.settings import *  # noqa: F403 - the project's settings, unchanged
from clerkfeeds.settings import REST_FRAMEWORK

ROOT_URLCONF = "bench.peer.urls"

REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    # Textbook DRF: no auth (the project's Clerk token check is for /feed/; leaving it out makes
    # the peer cheaper, never dearer), the default exception handler, limit/offset paging.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 1000,
}
