"""Two nodes on one PostgreSQL database: a token of a key disabled through one node is
refused by the other within a second, and a signing key rotation through one node is
signed with and published by the other within a second."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import jwt
import pytest

from keyplane.app import build
from keyplane.settings import Settings

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, Clock, LogCapture, Server
from support.databases import fresh_postgres

pytestmark = pytest.mark.postgres

WITHIN = 1.0  # seconds: the promise


def _node(url: str) -> Server:
    clock = Clock()
    settings = Settings(
        database_url=url, secret_key=TEST_SECRET, run_jobs=False, usage_flush_interval=0.05
    )
    server = Server(build(settings, clock=clock), clock, url, None)
    server.start()
    listener = server.kp.listener
    assert listener is not None
    assert listener.listening.wait(10)  # type: ignore[attr-defined]
    return server


@pytest.fixture
def nodes(postgres_url: str, log_capture: LogCapture) -> Iterator[tuple[Server, Server]]:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_oauth_nodes") as url, ExitStack() as stack:
        a = _node(url)
        stack.callback(a.stop)
        b = _node(url)
        stack.callback(b.stop)
        yield a, b


def _within_a_second(condition: Callable[[], bool]) -> None:
    since = time.monotonic()
    while not condition():
        if time.monotonic() - since > WITHIN:
            pytest.fail(f"not within {WITHIN} s")
        time.sleep(0.005)


def _token(node: Server, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{node.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "apps:read"},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _status(node: Server, token: str) -> int:
    response = httpx.get(f"{node.base_url}/v1/apps", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_a_disabled_keys_token_is_refused_by_another_node_within_a_second(
    nodes: tuple[Server, Server],
) -> None:
    a, b = nodes
    made = a.kp.orgs.create("Acme", "ops@acme.io")
    owner = httpx.Client(
        base_url=a.base_url, headers={"Authorization": f"Bearer {made.api_key}"}, timeout=10
    )
    with owner:
        key = owner.post("/v1/keys", json={"name": "machine", "scopes": ["apps:read"]}).json()
        token = _token(a, key["id"], key["key"])
        assert _status(b, token) == 200  # node b has the key's record cached now
        assert owner.patch(f"/v1/keys/{key['id']}", json={"status": "inactive"}).status_code == 200
        _within_a_second(lambda: _status(b, token) == 401)
        assert owner.patch(f"/v1/keys/{key['id']}", json={"status": "active"}).status_code == 200
        _within_a_second(lambda: _status(b, token) == 200)
        assert owner.delete(f"/v1/keys/{key['id']}").status_code == 204
        _within_a_second(lambda: _status(b, token) == 401)


def test_a_rotation_through_one_node_reaches_the_other_within_a_second(
    nodes: tuple[Server, Server],
) -> None:
    a, b = nodes
    made = a.kp.orgs.create("Acme", "ops@acme.io")
    before = _token(b, made.key_id, made.api_key)
    rotation = a.kp.signing.rotate()

    def b_signs_with_the_new_key() -> bool:
        token = _token(b, made.key_id, made.api_key)
        return bool(jwt.get_unverified_header(token)["kid"] == rotation.current.kid)

    _within_a_second(b_signs_with_the_new_key)
    published = httpx.get(f"{b.base_url}/.well-known/jwks.json").json()["keys"]
    assert {k["kid"] for k in published} == {rotation.previous, rotation.current.kid}
    assert _status(b, before) == 200
    assert _status(a, _token(b, made.key_id, made.api_key)) == 200
