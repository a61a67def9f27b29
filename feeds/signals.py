"""Signals the feeds send, for observers that must not be wired into the hot path.

`page_served` is sent once per feed response, when the server closes it (after its last byte,
or after the stream failed or the client went away: outcome "failed"), with the keyword
arguments `feed, fmt, offset, limit, rows, bytes, duration, outcome, client, params` (never a
credential). It is sent with `send_robust`: receivers must be quick and must never raise, since
the worker's thread and the importer's next request on a keep-alive connection wait for them.

See docs/feeds.md ("For developers", `page_served`) for each argument and the ordering.
"""

from django.dispatch import Signal

page_served = Signal()
