"""Every console response carries the security headers: pages, redirects, error pages,
refused forms and static files alike; HSTS only when the request came over HTTPS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from test_signin import PASSWORD, Visitor, person

from keyplane.app import create_app

from conftest import CreatedKeys, Org, Server


@pytest.fixture(scope="module")
def owner(sqlite_server: Server, created_keys: CreatedKeys) -> Iterator[Visitor]:
    visitor = Visitor(sqlite_server)
    assert visitor.sign_in(person(Org(sqlite_server, created_keys), "owner"), PASSWORD).status_code
    yield visitor
    visitor.close()
    created_keys.close_clients()


@pytest.fixture(scope="module")
def stranger(sqlite_server: Server) -> Iterator[Visitor]:
    visitor = Visitor(sqlite_server)
    yield visitor
    visitor.close()


Request = Callable[[Visitor, Visitor], httpx.Response]

RESPONSES: dict[str, tuple[Request, int]] = {
    "a page": (lambda owner, _: owner.get("/console/keys"), 200),
    "a redirect": (lambda owner, _: owner.get("/console"), 303),
    "a page not found": (lambda owner, _: owner.get("/console/keys/key_nothing/edit"), 404),
    "a refused form": (lambda owner, _: owner.post("/console/keys", {"name": "x"}), 403),
    "the sign-in page": (lambda _, stranger: stranger.get("/console/login"), 200),
    "the way to sign in": (lambda _, stranger: stranger.get("/console/apps"), 303),
    "a static file": (lambda _, stranger: stranger.get("/console/static/console.js"), 200),
    "the vendored chart library": (
        lambda _, stranger: stranger.get("/console/static/vendor/uplot/uPlot.iife.min.js"),
        200,
    ),
    "a missing static file": (lambda _, stranger: stranger.get("/console/static/nothing"), 404),
}


@pytest.mark.parametrize("kind", RESPONSES)
def test_every_console_response_carries_the_security_headers(
    owner: Visitor, stranger: Visitor, kind: str
) -> None:
    request, status_code = RESPONSES[kind]

    response = request(owner, stranger)

    assert response.status_code == status_code
    csp = {
        d.strip().split(" ", 1)[0]: d.strip()
        for d in response.headers["content-security-policy"].split(";")
    }
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["default-src"] == "default-src 'self'"
    assert csp["script-src"] == "script-src 'self'"  # no inline script, no CDN
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # plain http: RFC 6797 7.2


def over_https(server: Server, path: str) -> httpx.Response:
    """The ASGI app called directly with an https URL, as uvicorn presents a request that
    came over TLS (no lifespan: the server's services are already running)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(keyplane=server.kp))
        async with httpx.AsyncClient(transport=transport, base_url="https://keyplane") as client:
            return await client.get(path)

    # In a thread of its own: Playwright's sync API leaves an event loop running in this one
    # when the browser tests share the session.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(get())).result()


@pytest.mark.parametrize("path", ["/console/login", "/console", "/console/static/console.css"])
def test_over_https_the_console_also_asks_for_https_from_now_on(
    sqlite_server: Server, path: str
) -> None:
    response = over_https(sqlite_server, path)

    assert response.status_code in (200, 303)
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_rest_api_is_left_to_its_own_headers(sqlite_server: Server) -> None:
    response = over_https(sqlite_server, "/v1/keys")

    assert response.status_code == 401
    assert "content-security-policy" not in response.headers
