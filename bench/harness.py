"""What both benchmarks share: processes that always get stopped, servers, an HTTP client, RSS.

Every process started here runs in its own session (process group) and is registered with a
`Processes` stack; leaving the `with` block, an exception, Ctrl-C or SIGTERM stops each group
(SIGTERM, then SIGKILL after a grace period), so no gunicorn or fake Clerk outlives a run.
Servers bind to 127.0.0.1 only, and the client refuses any other address.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
OUT = REPO / "bench" / "out"

BENCH_PUBLIC_KEY = "bench-public-key"
BENCH_PRIVATE_KEY = "bench-private-key"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------------
class Processes:
    """A stack of started processes, each stopped (its whole group) on exit, whatever happens."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._old_handlers: dict[int, object] = {}

    def __enter__(self) -> Processes:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, _raise_exit)
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)

    def start(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, *, grace: float = 15.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self._procs = [(n, p) for n, p in self._procs if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self._procs)):
            self.stop(proc)


def _raise_exit(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, *, timeout: float = 30.0, log_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before listening:\n{tail}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# --- servers -----------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return child_pids(self.proc.pid)


def start_fake_clerk(procs: Processes, tokens: list[str], run_dir: Path) -> str:
    """The project's fake Clerk on loopback, accepting `tokens`; returns its base URL."""
    port = free_port()
    argv = [PYTHON, "-m", "clerk.fake", "--host", "127.0.0.1", "--port", str(port)]
    for token in tokens:
        argv += ["--accept", token]
    log_path = run_dir / "fake_clerk.log"
    proc = procs.start("fake-clerk", argv, env=dict(os.environ), log_path=log_path)
    wait_listening(port, proc, log_path=log_path)
    return f"http://127.0.0.1:{port}"


def server_env(
    *, database_url: str, cache_url: str, clerk_url: str, settings_module: str = "clerkfeeds.settings"
) -> dict[str, str]:
    """The production-like environment every server of a run gets (the same for all three)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CLERK_", "GDPR_"))}
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        CACHE_URL=cache_url,
        TRUST_X_FORWARDED_PROTO="1",
        CLERK_API_URL=clerk_url,
        CLERK_PUBLIC_KEY=BENCH_PUBLIC_KEY,
        CLERK_PRIVATE_KEY=BENCH_PRIVATE_KEY,
        CLERK_WEB_WORKERS="2",
        PYTHONPATH=str(REPO),
        # The project's gunicorn.conf.py recycles workers every ~2,000 requests; a benchmark
        # run makes a few thousand, and a recycled worker would reset VmHWM (hiding growth).
        GUNICORN_MAX_REQUESTS="0",
    )
    return env


NO_CONF = """# Written by bench/harness.py: the project has no gunicorn.conf.py (yet).
# Sync workers, and a timeout long enough for a whole-feed stream (a sync worker is killed when
# one request outlives `timeout`).
worker_class = "sync"
timeout = 900
graceful_timeout = 10
"""


def gunicorn_config(run_dir: Path) -> tuple[Path, str]:
    """The config every server of a run uses: the project's gunicorn.conf.py when it exists.

    Decided once per run, so the project, the peer and the bare app get the same settings.
    Returns (path, description for the report).
    """
    conf = REPO / "gunicorn.conf.py"
    if conf.exists():
        return conf, "the project's gunicorn.conf.py"
    fallback = run_dir / "gunicorn.bench.py"
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text(NO_CONF)
    return fallback, "sync workers, timeout 900 s (no gunicorn.conf.py in the project)"


def start_gunicorn(
    procs: Processes, name: str, app: str, env: dict[str, str], run_dir: Path, *, config: Path, workers: int = 2
) -> Server:
    """Start `app` under gunicorn with `config`; worker count and bind given on the command line
    (they override the config file) so all servers of a run are comparable."""
    port = free_port()
    argv = [
        str(VENV_BIN / "gunicorn"),
        app,
        "--config",
        str(config),
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(REPO),
    ]
    log_path = run_dir / f"{name}.log"
    proc = procs.start(name, argv, env=env, log_path=log_path)
    wait_listening(port, proc, log_path=log_path, timeout=60)
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + 30
    while len(server.workers()) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return server


# --- memory ------------------------------------------------------------------------------------
def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def proc_status_kb(pid: int, key: str) -> int | None:
    """A `Vm…` line of /proc/<pid>/status, in kB (None when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pids: list[int]) -> dict[int, float]:
    """VmHWM (the kernel's peak resident set) of each pid, in MB."""
    result = {}
    for pid in pids:
        kb = proc_status_kb(pid, "VmHWM")
        if kb is not None:
            result[pid] = kb / 1024
    return result


class RssSampler:
    """Samples VmRSS of a server's workers in a thread; `peak` is the max seen per pid, in MB."""

    def __init__(self, server: Server, *, interval: float = 0.1) -> None:
        self.server = server
        self.interval = interval
        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.server.workers():
                kb = proc_status_kb(pid, "VmRSS")
                if kb is not None:
                    self.peak[pid] = max(self.peak.get(pid, 0.0), kb / 1024)
            self._stop.wait(self.interval)


# --- HTTP --------------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    body: bytes
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)


class Client:
    """A small HTTP/1.1 client for loopback servers (refuses anything else).

    One keep-alive connection, reopened when the server closed it (gunicorn's sync workers
    close after every response; gthread closes idle ones after `keepalive` seconds). A request
    that fails on a reused connection before any response byte is retried once on a new one,
    as browsers and `requests` do. `seconds` runs from sending the request to the last byte.
    """

    # Close a connection idle longer than this ourselves (gunicorn's default keepalive is 2-5 s).
    IDLE_SECONDS = 1.0

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, timeout: float = 120.0) -> None:
        parts = urlsplit(base_url)
        if not ipaddress.ip_address(parts.hostname).is_loopback:
            raise ValueError("the benchmarks only talk to loopback servers")
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https", **(headers or {})}
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._conn is not None and time.monotonic() - self._last_used > self.IDLE_SECONDS:
            self.close()
        reused = self._conn is not None
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn, reused

    def get(self, path: str) -> Response:
        for attempt in (1, 2):
            conn, reused = self._connection()
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=self.headers)
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            except (http.client.HTTPException, OSError):
                self.close()
                raise
            seconds = time.perf_counter() - started
            self._last_used = time.monotonic()
            if resp.will_close:
                self.close()
            return Response(resp.status, body, seconds, {k.lower(): v for k, v in resp.getheaders()})
        raise AssertionError("unreachable")

    def stream(self, path: str) -> tuple[http.client.HTTPResponse, float]:
        """Open a response without reading its body (the caller reads it, then calls close())."""
        self.close()
        conn, _ = self._connection()
        started = time.perf_counter()
        conn.request("GET", path, headers=self.headers)
        return conn.getresponse(), started

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- statistics --------------------------------------------------------------------------------
def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM"
