"""The admin's login lock-out page (django-axes, configured in settings).

A locked-out login gets `lockout_response`: 429, plain text in the visitor's language, with
`Retry-After` set to the cool-off; never a traceback, never the username typed.
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.utils.translation import ngettext


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """`AXES_LOCKOUT_CALLABLE`: the page a locked-out login gets."""
    seconds = max(int(get_cool_off(request).total_seconds()), 1)
    minutes = math.ceil(seconds / 60)
    message = ngettext(
        "Too many failed logins: logging in to this account, or from this address, is blocked for "
        "%(minutes)d minute. Try again later.",
        "Too many failed logins: logging in to this account, or from this address, is blocked for "
        "%(minutes)d minutes. Try again later.",
        minutes,
    ) % {"minutes": minutes}
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response
