"""The admin's login lock-out (django-axes, configured in settings): what it shows and logs.

A locked-out login gets `lockout_response`: 429, plain text in the visitor's language, with
`Retry-After` set to the cool-off; never a traceback, never the username typed. Axes' own log
lines name the client through `client_str`: the address and path only, because a username can
be an email or a name, which logs never hold.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import ngettext


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """`AXES_LOCKOUT_CALLABLE`: the page a locked-out login gets."""
    seconds = max(int(settings.AXES_COOLOFF_TIME.total_seconds()), 1)
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


def client_str(username, ip_address, user_agent, path_info, request) -> str:
    """`AXES_CLIENT_STR_CALLABLE`: how axes' log lines name a client (no username: see above)."""
    return f"{{ip_address: {ip_address!r}, path_info: {path_info!r}}}"
