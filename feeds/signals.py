"""Signals the feeds send, for observers that must not be wired into the hot path.

`page_served` is sent once per feed response, when the server closes it: after its last byte
was written (so the importer already has the whole page), or after the stream failed or the
client went away (outcome "failed"). Keyword arguments:

    feed:      the feed's name ("products", …, or "all")
    fmt:       "json" or "ndjson"
    offset:    int (0 without paging)
    limit:     int or None (None: the whole feed was streamed)
    rows:      how many objects the response carried
    bytes:     how many body bytes were produced
    duration:  seconds from the view's start to the end of the body (not to the close)
    outcome:   "ok" or "failed"
    client:    an opaque identity of the caller (never a token): a hash, or the client address
    params:    the normalised query, without credentials (for grouping pages into walks)

Receivers must be quick and must never raise into the feed (they are called with
`send_robust`): the worker's thread, and on a keep-alive connection the importer's next request,
wait for them.

Order: on one keep-alive connection the pages of a walk are signalled in the order they were
served (the server reads the connection's next request only after the close). With a new
connection per page, a page could in principle be signalled before its predecessor, if the
predecessor's close stalled for longer than the whole next page took to serve.
"""

from django.dispatch import Signal

page_served = Signal()
