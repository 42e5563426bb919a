"""gunicorn's settings for feereg, read from the environment.

    gunicorn -c python:feereg.gunicorn_conf            (what `feereg serve` runs)

Each worker is a process with its own copy of the application: its own database pool
and its own in-memory snapshot for comparisons and quotes (services/snapshot.py), which it
starts building as soon as it is up. What must be the same for every worker — rate-limit
counts, the registry state behind the pages' ETags — is in Redis (feereg/cache.py).

Decisions:
- The application is not preloaded in the master (FEEREG_PRELOAD=1 to preload). A worker
  imports it itself, so `kill -HUP <master>` replaces workers one by one with new code and
  no dropped request, and nothing opened in the master (a database connection, the
  snapshot's warm-up thread) is shared across fork. Preloading would save little memory:
  the snapshot is per worker either way, and reference counting soon copies shared pages.
- Workers are recycled after FEEREG_MAX_REQUESTS requests, with jitter so that they do
  not all restart (and rebuild their snapshots) at the same moment. Rarely: a new worker
  rebuilds its snapshot and search columns (about 25 s of one core at a million items)
  and meanwhile the others take its share. At 5,000 requests a busy worker restarted every
  minute or two; the load benchmark's slowest requests were those queued behind a restart.
- Timeouts: a worker silent for FEEREG_TIMEOUT seconds is killed (a PDF of a large
  schedule takes seconds, not a minute); on a restart or stop, requests in flight get
  FEEREG_GRACEFUL_TIMEOUT seconds to finish.
- The access log names the worker (pid=) and the time each request took.
- gunicorn's control socket is off: its default path is one per user and machine, which
  two servers (or a test beside a running site) would fight over. Signals do its job.
"""
from __future__ import annotations

import os
import sys

#: The server's own environment variables and their defaults (the application's are in
#: feereg/config.py; .env.example lists both).
ENVIRONMENT = {
    "FEEREG_BIND": "127.0.0.1:5000",
    "FEEREG_WORKERS": "",
    "WEB_CONCURRENCY": "2",
    "FEEREG_THREADS": "1",
    "FEEREG_TIMEOUT": "60",
    "FEEREG_GRACEFUL_TIMEOUT": "30",
    "FEEREG_KEEPALIVE": "5",
    "FEEREG_MAX_REQUESTS": "100000",
    "FEEREG_MAX_REQUESTS_JITTER": "10000",
    "FEEREG_PRELOAD": "0",
    "FEEREG_ACCESS_LOG": "-",
    "FEEREG_ERROR_LOG": "-",
    "FEEREG_LOG_LEVEL": "info",
}


def _setting(name: str) -> str:
    return os.environ.get(name, "").strip() or ENVIRONMENT[name]


def _number(name: str) -> int:
    value = _setting(name)
    try:
        return int(value)
    except ValueError:
        sys.exit(f"feereg: {name}={value!r}: expected a whole number")


wsgi_app = "feereg.wsgi:app"
bind = [address.strip() for address in _setting("FEEREG_BIND").split(",") if address.strip()]
workers = _number("FEEREG_WORKERS") if _setting("FEEREG_WORKERS") else _number("WEB_CONCURRENCY")
threads = _number("FEEREG_THREADS")
worker_class = "gthread" if threads > 1 else "sync"
timeout = _number("FEEREG_TIMEOUT")
graceful_timeout = _number("FEEREG_GRACEFUL_TIMEOUT")
keepalive = _number("FEEREG_KEEPALIVE")
max_requests = _number("FEEREG_MAX_REQUESTS")
max_requests_jitter = _number("FEEREG_MAX_REQUESTS_JITTER")
preload_app = _setting("FEEREG_PRELOAD").lower() in ("1", "true", "yes", "on")
accesslog = _setting("FEEREG_ACCESS_LOG")
errorlog = _setting("FEEREG_ERROR_LOG")
loglevel = _setting("FEEREG_LOG_LEVEL")
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms pid=%(p)s'
# A long search typed into the URL still reaches the application, which answers it with a
# message rather than gunicorn's bare 414 page.
limit_request_line = 8190
proc_name = "feereg"
control_socket_disable = True
# The workers' heartbeat files: in memory, so a slow or full disk cannot get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def on_starting(server):
    """Refuse to start on settings the application cannot run with, once, in the master,
    with the message rather than a worker's traceback repeated per worker."""
    from flask import Flask

    from feereg import config

    # The settings as create_app reads them, without building the application here.
    probe = Flask("feereg", instance_relative_config=True)
    settings = probe.config
    try:
        settings.from_object(config.Defaults)
        settings.from_pyfile("feereg.cfg", silent=True)
        settings.update(config.from_environment())
        config.check(settings)
    except config.ConfigError as exc:
        server.log.error("%s", exc)
        sys.exit(1)
    if server.cfg.threads > 1:  # FEEREG_THREADS, --threads or GUNICORN_CMD_ARGS alike
        # Measured, not assumed: at a million items under the load benchmark, gthread
        # workers died of segmentation faults (in the garbage collector, with either psycopg
        # implementation); sync workers never did. Until that is found, processes scale it.
        server.log.error("%d threads per worker (FEEREG_THREADS, --threads): not supported (gthread workers crashed "
                         "under load); leave it at 1 and set FEEREG_WORKERS instead", server.cfg.threads)
        sys.exit(1)
    if workers > 1 and not settings.get("REDIS_URL"):
        server.log.warning("%d workers without FEEREG_REDIS_URL: each worker counts rate limits on its own, "
                           "so a limit of N lets through up to %d x N", workers, workers)


def post_fork(server, worker):
    if preload_app:
        # Connections opened in the master must not be shared with the children.
        from feereg.extensions import db
        from feereg.wsgi import app

        with app.app_context():
            db.engine.dispose(close=False)


def post_worker_init(worker):
    """The worker is up: build its snapshot now, in a thread of this process (a thread
    started in the master would not survive the fork)."""
    from feereg import wsgi

    wsgi.warm()
