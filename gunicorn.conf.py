"""gunicorn configuration for clerkfeeds: `gunicorn -c gunicorn.conf.py clerkfeeds.wsgi`.

This file is deployment configuration, not Django code, so it reads its own environment
variables (all optional):

    WEB_CONCURRENCY              worker processes (default: 2 x CPU count + 1)
    GUNICORN_THREADS             threads per worker (default 4)
    GUNICORN_BIND                listen address (default 0.0.0.0:8000)
    GUNICORN_TIMEOUT             worker heartbeat deadline, seconds (default 60)
    GUNICORN_GRACEFUL_TIMEOUT    time in-flight responses get on restart/stop (default 120)
    GUNICORN_MAX_REQUESTS        recycle a worker after this many requests (default 2000, 0: never)
    GUNICORN_ACCESS_LOG          "-" (stdout, default) or a path, or "" for none
    FORWARDED_ALLOW_IPS          proxies trusted for X-Forwarded-Proto (default loopback only)

Why gthread and not sync workers: a feed without `limit` streams for minutes, and the importer's
pages arrive over connections of unknown speed. A sync worker is one request at a time and only
reports to the master between requests, so its `timeout` must exceed the longest stream, which
also means a truly hung worker is noticed only after that long. A gthread worker's main loop
reports every second while its threads stream, so `timeout` stays a short liveness deadline,
and a slow client holds one thread rather than a whole process. Processes give CPU parallelism
(serialisation is Python work under the GIL); threads overlap the waits on PostgreSQL and on the
client's socket. Each thread keeps its own database connection (CONN_MAX_AGE): size PostgreSQL's
`max_connections` (or a pgbouncer) for workers x (threads + 1) per host: each worker also has
the thread that records import runs (`feeds.walks`).
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# --- Processes -------------------------------------------------------------------------------
wsgi_app = "clerkfeeds.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)

# The settings check refuses a per-process cache when several processes serve the feeds (token
# verifications and pagination cursors would not be shared). It learns the count from this
# variable, which forked workers inherit. An operator running several hosts may set a larger
# total themselves; never lower it below what this host runs.
os.environ["CLERK_WEB_WORKERS"] = str(max(workers, _int("CLERK_WEB_WORKERS", 1)))

# --- Timeouts and restarts -------------------------------------------------------------------
# gthread: a heartbeat deadline, not a request deadline (see the module docstring).
timeout = _int("GUNICORN_TIMEOUT", 60)
# On SIGHUP (reload) or SIGTERM (stop), in-flight pages and streams get this long to finish;
# the importer retries a cut page, and a cut stream never parses as a complete feed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 120)
# The importer walks pages on one keep-alive connection through the proxy.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then (slow leaks in any library stay bounded); the jitter keeps all
# workers from restarting at the same moment.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
# No runtime control socket (gunicorn >= 25): it would be created in the service user's home,
# which the image keeps read-only; the classic signals (HUP, TERM, TTIN/TTOU) still work.
control_socket_disable = True
# Heartbeat files in memory: a container's overlay filesystem can stall fsync-like updates.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# --- Proxy -----------------------------------------------------------------------------------
# Only the TLS proxy may say "this was HTTPS". gunicorn honours X-Forwarded-Proto from these
# addresses only (the Django setting TRUST_X_FORWARDED_PROTO is the other, address-blind way).
# Never "*" unless this port is reachable from the proxy alone.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# One header, one meaning: gunicorn's defaults also accept X-Forwarded-Ssl and
# X-Forwarded-Protocol, which a proxy that only rewrites X-Forwarded-Proto would pass through
# from the client.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# --- Logging ---------------------------------------------------------------------------------
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Path without the query string (%(U)s, not %(r)s): the single feed's salt/hash travel in the
# query. No headers at all: no referer (%(f)s), no user agent, and no %(u)s, which is the user
# name of an HTTP Basic credential. %(M)s is the duration in milliseconds.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
# Lines longer than this are refused before Django sees them (the feeds' queries are short).
limit_request_line = 4094
