"""When Redis goes away under a running server: what verification and key-authenticated
API calls answer, per KEYPLANE_REDIS_FAILURE (redislimits.RedisFailurePolicy). A
redis-server of the test's own, killed mid-test; SQLite for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CreatedKeys, Org, OwnRedis, Server, _start_server
from support import problem

pytestmark = pytest.mark.redis

MINUTE = {"name": "minute", "limit": 100, "period_seconds": 60}
QUOTA = {"remaining": 100}


@pytest.fixture(params=[None, "open", "closed"], ids=["default", "open", "closed"])
def down(
    request: pytest.FixtureRequest, own_redis: OwnRedis, tmp_path: Path
) -> Iterator[tuple[Server, str | None]]:
    path = tmp_path / "keyplane.db"
    server = _start_server(
        f"sqlite:///{path}", path, redis_url=own_redis.url, redis_failure=request.param
    )
    yield server, request.param
    server.stop()


def test_verification_follows_the_failure_policy(
    down: tuple[Server, str | None], own_redis: OwnRedis, created_keys: CreatedKeys
) -> None:
    server, setting = down
    org = Org(server, created_keys)
    verifier = org.key_with("keys:verify")
    limited = org.api.create_key(ratelimits=[MINUTE])["key"]
    made = org.api.create_key(quota=QUOTA)
    prepaid, prepaid_id = made["key"], made["id"]
    caller = org.key_with("apps:read", quota=QUOTA)
    for key in (limited, prepaid):
        assert verifier.post("/v1/keys/verify", json={"key": key}).json()["code"] == "VALID"
    assert caller.get("/v1/apps").status_code == 200

    own_redis.stop()

    rate_open = setting != "closed"
    quota_open = setting == "open"
    answer = verifier.post("/v1/keys/verify", json={"key": limited})
    if rate_open:
        assert answer.status_code == 200
        assert answer.json()["code"] == "VALID"
        assert answer.json()["ratelimits"] == []  # nothing was checked: no numbers claimed
    else:
        assert problem(answer, 503)
        assert answer.headers["Retry-After"] == "1"
    answer = verifier.post("/v1/keys/verify", json={"key": prepaid})
    own_api = caller.get("/v1/apps")
    if quota_open:
        assert answer.json()["code"] == "VALID"
        assert answer.json()["quota"] is None
        assert own_api.status_code == 200
    else:
        body = problem(answer, 503)
        assert "cannot be checked" in body["detail"]
        assert answer.headers["Retry-After"] == "1"
        assert problem(own_api, 503)
        assert own_api.headers["Retry-After"] == "1"
    # The key's page still answers, with the stored numbers (the live ones are unknown).
    shown = org.api.get(f"/v1/keys/{prepaid_id}")
    assert shown.status_code == 200
    assert shown.json()["quota"]["remaining"] in (99, 100)  # the one spend, batched or not yet
    documented = verifier.get("/openapi.json").json()["paths"]["/v1/keys/verify"]["post"]
    assert "Redis" in documented["responses"]["503"]["description"]
    created_keys.close_clients()
