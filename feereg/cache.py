"""The store every worker of every server shares: Redis at FEEREG_REDIS_URL.

A gunicorn worker's memory is its own, and so is each server's: a value that must be the
same wherever a request lands (the registry's state behind the pages' ETags, rate-limit
counts) lives here. Caches that are per worker by design and follow the database on their
own — the comparisons' numpy snapshot, Whoosh's segment postings — stay in process memory.

Without FEEREG_REDIS_URL `shared_cache()` is None and callers fall back to the database.
With it, Redis trouble never fails a request: an operation raises CacheUnavailable at
once (a connection refused, or the REDIS_TIMEOUT seconds of one that does not answer),
the caller falls back, and for the next few seconds this process does not try again, so a
dead Redis costs each request nothing. The warning is logged once per outage, not per
request.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)

_EXTENSION = "feereg.cache"
#: Seconds this process leaves Redis alone after it failed to answer.
RETRY_AFTER = 5.0


class CacheUnavailable(Exception):
    """Redis did not answer; the caller carries on without it."""


class SharedCache:
    """A few Redis operations on keys under one prefix, with the outage handling above."""

    def __init__(self, url: str, prefix: str, timeout: float):
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           decode_responses=True)
        self._down_until = 0.0
        #: Times Redis answered again after failing here: what was written meanwhile is lost.
        self.recoveries = 0
        self._lock = threading.Lock()

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def get(self, name: str) -> str | None:
        return self._call(lambda: self.client.get(self.key(name)))

    def set(self, name: str, value: str, ttl: float | None = None) -> None:
        self._call(lambda: self.client.set(self.key(name), value, px=_ms(ttl)))

    def add(self, name: str, value: str, ttl: float | None = None) -> bool:
        """Set only if absent (every worker agrees on the first value); True if this one won."""
        return bool(self._call(lambda: self.client.set(self.key(name), value, px=_ms(ttl), nx=True)))

    def delete(self, *names: str) -> None:
        self._call(lambda: self.client.delete(*(self.key(n) for n in names)))

    def ping(self) -> float:
        """Seconds a round trip took; raises CacheUnavailable (always tries: for /healthz)."""
        started = time.perf_counter()
        self._call(self.client.ping, force=True)
        return time.perf_counter() - started

    def _call(self, operation, force: bool = False):
        if not force and time.monotonic() < self._down_until:
            raise CacheUnavailable("Redis did not answer a moment ago")
        try:
            result = operation()
        except redis.RedisError as exc:
            with self._lock:
                first = self._down_until == 0.0
                self._down_until = time.monotonic() + RETRY_AFTER
            if first:
                log.warning("Redis at %s is unreachable (%s): serving without the shared cache until it "
                            "answers; rate limits count per worker meanwhile", _safe(self.url), exc)
            raise CacheUnavailable(str(exc)) from exc
        if self._down_until:
            with self._lock:
                if self._down_until:
                    self._down_until = 0.0
                    self.recoveries += 1
                    log.warning("Redis at %s answers again", _safe(self.url))
        return result


def _ms(seconds: float | None) -> int | None:
    return int(seconds * 1000) if seconds else None


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions[_EXTENSION] = (SharedCache(url, app.config["REDIS_PREFIX"], app.config["REDIS_TIMEOUT"])
                                  if url else None)


def shared_cache(app: Flask | None = None) -> SharedCache | None:
    """The app's shared cache, or None when no Redis is configured."""
    app = app or current_app
    return app.extensions.get(_EXTENSION)
