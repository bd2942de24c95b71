"""KeyplaneGuard in a FastAPI app, against a real keyplane server over loopback.

A valid key passes with what keyplane says about it; a refused one gets keyplane's problem
documents; a key without limits is answered from the cache, and dropped from it within a
second of being disabled (the event stream); a key with limits is counted by keyplane on
every request and carries its RateLimit headers.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx

from keyplane_client import AsyncKeyplane, KeyplaneGuard

from conftest import Org, free_port
from support.aio import run
from support.guarded import (
    WITHIN,
    bearer,
    client_for,
    guarded_app,
    subscribed,
    until,
    verifier,
)

PROBLEM = "application/problem+json"


def _keys(org: Org, **target: object) -> tuple[str, str, str]:
    """(verifier key, target key id, target key), in an org with a ``models`` resource."""
    _models_resource(org)
    checker = org.api.create_key(name="gateway", scopes=["keys:verify"])
    made = org.api.create_key(name="caller", **{"scopes": ["models:read"], **target})
    return str(checker["key"]), str(made["id"]), str(made["key"])


def _models_resource(org: Org) -> None:
    response = org.api.post("/v1/resources", json={"name": "models"})
    assert response.status_code in (201, 409), response.text


def test_a_valid_key_passes_with_its_verdict_and_is_then_served_from_the_cache(
    sdk_org: Org,
) -> None:
    profile = sdk_org.api.post("/v1/profiles", json={"name": "gold"}).json()
    checker, key_id, key = _keys(sdk_org, metadata={"plan": "pro"}, profile_id=profile["id"])

    async def scenario() -> tuple[list[httpx.Response], int]:
        kp, counted = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        async with kp, guard.running(), client_for(guarded_app(guard)) as app:
            await subscribed(guard)
            answers = [await app.get("/models", headers=bearer(key)) for _ in range(5)]
            return answers, counted.verifications

    answers, verifications = run(scenario)
    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].json() == {
        "key_id": key_id,
        "app_id": None,
        "scopes": ["models:read"],
        "metadata": {"plan": "pro"},
        "profile": "gold",
    }
    assert "ratelimit" not in answers[0].headers  # no limits, no headers
    assert verifications == 1  # the other four from the cache


def test_a_key_lacking_the_scope_is_a_403_problem_naming_it(sdk_org: Org) -> None:
    checker, _, key = _keys(sdk_org, scopes=["apps:read"])

    async def scenario() -> httpx.Response:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp, subscribe=False)
        async with kp, client_for(guarded_app(guard)) as app:
            return await app.get("/models", headers=bearer(key))

    answer = run(scenario)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["type"] == "urn:keyplane:problem:missing-scope"
    assert body["code"] == "INSUFFICIENT_SCOPE"
    assert body["missing_scopes"] == ["models:read"]
    assert body["status"] == 403


def test_missing_malformed_and_unknown_keys_are_401_with_www_authenticate(sdk_org: Org) -> None:
    checker, _, key = _keys(sdk_org)
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")

    async def scenario() -> tuple[list[httpx.Response], int]:
        kp, counted = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp, subscribe=False)
        async with kp, client_for(guarded_app(guard)) as app:
            answers = [
                await app.get("/models"),
                await app.get("/models", headers={"Authorization": f"Basic {key}"}),
                await app.get("/models", headers=bearer(typo)),
            ]
            return answers, counted.verifications

    answers, verifications = run(scenario)
    for answer in answers:
        assert answer.status_code == 401
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["type"] == "urn:keyplane:problem:unauthenticated"
        assert key not in answer.text
    assert verifications == 0  # a typo fails its checksum here, before any call


def test_a_disabled_key_is_refused_within_a_second_while_cached(org: Org) -> None:
    """On each backend: on PostgreSQL the notice reaches the stream through the node's
    LISTEN connection, on SQLite from the store's commit."""
    sdk_org = org
    checker, key_id, key = _keys(sdk_org)

    async def scenario() -> tuple[float, int, int]:
        kp, counted = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        async with kp, guard.running(), client_for(guarded_app(guard)) as app:
            await subscribed(guard)
            for _ in range(3):
                assert (await app.get("/models", headers=bearer(key))).status_code == 200
            assert counted.verifications == 1  # cached
            cached = len(guard.cache)
            async with httpx.AsyncClient(base_url=sdk_org.server.base_url) as owner:
                changed = await owner.patch(
                    f"/v1/keys/{key_id}",
                    json={"status": "inactive"},
                    headers=bearer(sdk_org.api.key),
                )
                assert changed.status_code == 200

            async def refused() -> bool:
                return (await app.get("/models", headers=bearer(key))).status_code == 401

            took = await until(refused, WITHIN)
            return took, cached, len(guard.cache)

    took, cached, after = run(scenario)
    assert cached == 1
    assert took <= WITHIN
    assert after == 0


def test_a_key_with_rate_limits_is_counted_by_keyplane_on_every_request(sdk_org: Org) -> None:
    checker, _, key = _keys(
        sdk_org, ratelimits=[{"name": "burst", "limit": 3, "period_seconds": 60}]
    )

    async def scenario() -> tuple[list[httpx.Response], int]:
        kp, counted = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        async with kp, guard.running(), client_for(guarded_app(guard)) as app:
            await subscribed(guard)
            answers = [await app.get("/models", headers=bearer(key)) for _ in range(4)]
            return answers, counted.verifications

    answers, verifications = run(scenario)
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert verifications == 4  # never from the cache
    assert answers[0].headers["ratelimit-policy"] == '"burst";q=3'
    assert answers[0].headers["ratelimit"].startswith('"burst";r=2;t=')
    limited = answers[3]
    assert limited.headers["content-type"] == PROBLEM
    assert limited.json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit"].startswith('"burst";r=0;')


def test_a_reconnection_resumes_and_keeps_the_cache_or_is_reset_and_drops_it(
    sdk_org: Org,
) -> None:
    """The guard reconnects with Last-Event-ID: the node it left replays what it missed
    (the entries serve again); a position the node never gave (a restarted keyplane,
    another node) is answered with a reset, and the whole cache goes."""
    checker, _, key = _keys(sdk_org)

    async def scenario() -> list[tuple[int, int, bool]]:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        events = guard.events
        assert events is not None
        seen = []
        async with kp, guard.running(), client_for(guarded_app(guard)) as app:
            await subscribed(guard)
            await app.get("/models", headers=bearer(key))
            seen.append((len(guard.cache), events.resets, guard.cache.serving))
            for position in (events.last_event_id, "0123456789ab-1"):
                await events.aclose()  # the connection is lost: the cache stops serving
                seen.append((len(guard.cache), events.resets, guard.cache.serving))
                events.last_event_id = position
                await subscribed(guard)
                seen.append((len(guard.cache), events.resets, guard.cache.serving))
        return seen

    assert run(scenario) == [
        (1, 0, True),
        (1, 0, False),  # kept, not served, while disconnected
        (1, 0, True),  # resumed: nothing missed, the entry serves again
        (1, 0, False),
        (0, 1, True),  # reset: everything dropped
    ]


def test_a_reset_sent_while_connected_drops_the_whole_cache(sdk_org: Org) -> None:
    """What keyplane sends when its own listener lost PostgreSQL for a moment."""
    checker, _, key = _keys(sdk_org)

    async def scenario() -> tuple[int, float]:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        async with kp, guard.running(), client_for(guarded_app(guard)) as app:
            await subscribed(guard)
            await app.get("/models", headers=bearer(key))
            cached = len(guard.cache)
            sdk_org.server.kp.events.gap()

            async def dropped() -> bool:
                return len(guard.cache) == 0

            return cached, await until(dropped, WITHIN)

    cached, took = run(scenario)
    assert cached == 1
    assert took <= WITHIN


def test_without_the_stream_the_cache_serves_until_its_ttl_only(sdk_org: Org) -> None:
    checker, key_id, key = _keys(sdk_org)

    async def scenario() -> tuple[int, int, float]:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp, subscribe=False, cache_ttl=1.0)
        async with kp, client_for(guarded_app(guard)) as app:
            assert (await app.get("/models", headers=bearer(key))).status_code == 200
            disabled_at = time.monotonic()
            sdk_org.api.patch(f"/v1/keys/{key_id}", json={"status": "inactive"})
            stale = (await app.get("/models", headers=bearer(key))).status_code

            async def refused() -> bool:
                return (await app.get("/models", headers=bearer(key))).status_code == 401

            await until(refused, 3)
            return stale, 401, time.monotonic() - disabled_at

    stale, fresh, waited = run(scenario)
    assert stale == 200  # the documented price of subscribe=False
    assert fresh == 401
    assert waited <= 1.5


def test_keyplane_out_of_reach_is_a_503_never_a_pass(sdk_org: Org) -> None:
    checker, _, key = _keys(sdk_org)

    async def scenario() -> httpx.Response:
        kp, _ = verifier(f"http://127.0.0.1:{free_port()}", checker)
        guard = KeyplaneGuard(kp, subscribe=False)
        async with kp, client_for(guarded_app(guard)) as app:
            return await app.get("/models", headers=bearer(key))

    answer = run(scenario)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == PROBLEM


def test_concurrent_misses_share_one_verification_unless_the_key_is_limited(
    sdk_org: Org,
) -> None:
    checker, _, key = _keys(sdk_org)
    limit = {"ratelimits": [{"name": "wide", "limit": 1000, "period_seconds": 60}]}
    limited = str(sdk_org.api.create_key(name="limited", scopes=["models:read"], **limit)["key"])

    async def scenario() -> tuple[int, int]:
        kp, counted = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        async with kp, guard.running(), client_for(guarded_app(guard)) as app:
            await subscribed(guard)
            burst = [app.get("/models", headers=bearer(key)) for _ in range(10)]
            assert {a.status_code for a in await asyncio.gather(*burst)} == {200}
            shared = counted.verifications
            burst = [app.get("/models", headers=bearer(limited)) for _ in range(10)]
            assert {a.status_code for a in await asyncio.gather(*burst)} == {200}
            return shared, counted.verifications - shared

    shared, each = run(scenario)
    assert shared == 1
    assert each == 10  # every request of a limited key is counted by keyplane


def test_the_readme_guard_example_runs_against_a_real_server(sdk_org: Org) -> None:
    readme = (Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md").read_text()
    start = readme.index("## FastAPI guard")
    block = re.findall(r"```python\n(.*?)```", readme[start:], flags=re.DOTALL)[0]
    assert '"http://127.0.0.1:8000"' in block
    checker, key_id, key = _keys(sdk_org, metadata={"plan": "pro"})

    async def scenario() -> httpx.Response:
        namespace: dict[str, object] = {"gateway_key": checker}
        code = block.replace('"http://127.0.0.1:8000"', repr(sdk_org.server.base_url))
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
        kp = namespace["kp"]
        assert isinstance(kp, AsyncKeyplane)
        async with kp, client_for(namespace["app"]) as app:  # type: ignore[arg-type]
            return await app.get("/models", headers=bearer(key))

    answer = run(scenario)
    assert answer.status_code == 200
    assert answer.json() == {"caller": key_id, "app": None, "plan": "pro"}
