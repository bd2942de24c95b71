"""The machine's Redis, for tests that share it (each key id is unique, so tests never see
each other's counters). Tests that must stop or break a Redis start their own instead.

Skips with a reason when no Redis answers at KEYPLANE_TEST_REDIS_URL (default
redis://127.0.0.1:6379/0), except under CI=true, where that fails the run.
"""

from __future__ import annotations

import os

import pytest
import redis

REDIS_URL = os.environ.get("KEYPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true requires Redis)")
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL
