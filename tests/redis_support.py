"""Redis for the tests that need the real one (127.0.0.1:6379, or FEEREG_TEST_REDIS_URL).

Unreachable: those tests skip, with the reason in the summary that `-ra` prints; with
CI=true they fail instead. Each test gets its own key prefix and its keys are removed after.
"""
from __future__ import annotations

import os
import uuid

import pytest
import redis

REDIS_URL = os.environ.get("FEEREG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def redis_url_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"REDIS UNREACHABLE at {REDIS_URL} ({exc}): shared-store tests SKIPPED")
    return REDIS_URL


@pytest.fixture
def redis_url():
    return redis_url_or_skip()


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own, for REDIS_PREFIX (the cache and the rate limits)."""
    prefix = f"feereg-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_keys(redis_url, prefix)


def delete_keys(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url)
    keys = [*client.scan_iter(f"{prefix}:*"), *client.scan_iter(f"LIMITS:LIMITER/{prefix}/*")]
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)
