"""Signals the feeds send, for observers that must not be wired into the hot path.

`page_served` is sent once per feed response, after its last byte was produced (or when the
stream failed), with keyword arguments:

    feed:      the feed's name ("products", …, or "all")
    fmt:       "json" or "ndjson"
    offset:    int (0 without paging)
    limit:     int or None (None: the whole feed was streamed)
    rows:      how many objects the response carried
    bytes:     how many body bytes were produced
    duration:  seconds from the view's start to the end of the body
    outcome:   "ok" or "failed"
    client:    an opaque identity of the caller (never a token): a hash, or the client address
    params:    the normalised query, without credentials (for grouping pages into walks)

Receivers must be quick and must never raise into the feed (they are called with
`send_robust`).
"""

from django.dispatch import Signal

page_served = Signal()
