"""KEYPLANE_TRUSTED_PROXIES: X-Forwarded-For is believed only from listed peers, read from
the right, up to the first address that is not a trusted proxy. Over real loopback HTTP,
with uvicorn configured as ``keyplane serve`` configures it (its own header handling off),
so the socket peer is always 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from keyplane.api.middleware import TrustedProxies
from keyplane.app import build, create_app
from keyplane.cli.main import listen, server_config
from keyplane.settings import IPNetwork, Settings

from conftest import TEST_SECRET


class Running:
    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.sock = listen("127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(server_config(app, settings))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _networks(text: str) -> tuple[IPNetwork, ...]:
    return Settings(trusted_proxies=text).trusted_proxies


# trusted proxies -> [(X-Forwarded-For values, the client keyplane sees)]
CASES = {
    "": [
        (["203.0.113.7"], "127.0.0.1"),
        ([], "127.0.0.1"),
    ],
    "127.0.0.1": [
        ([], "127.0.0.1"),
        (["203.0.113.7"], "203.0.113.7"),
        (["198.51.100.1, 203.0.113.7"], "203.0.113.7"),  # the left one may be made up
        (["198.51.100.1", "203.0.113.7"], "203.0.113.7"),  # two headers read as one list
        (["203.0.113.7, 10.0.0.2"], "10.0.0.2"),  # 10.0.0.2 is not trusted here
        (["not-an-address"], "127.0.0.1"),
        (["2001:db8::1"], "2001:db8::1"),
    ],
    "127.0.0.0/8, 10.0.0.0/8": [
        (["203.0.113.7, 10.0.0.2"], "203.0.113.7"),
        (["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # every hop trusted: the leftmost
        (["unknown, 10.0.0.2"], "10.0.0.2"),  # garbage ends the walk
    ],
}


@pytest.fixture(params=list(CASES))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """The real app, trusting ``request.param``, with a route that shows its client."""
    settings = Settings(
        database_url="sqlite://", secret_key=TEST_SECRET, trusted_proxies=request.param
    )
    kp = build(settings)
    app = create_app(keyplane=kp)

    @app.get("/_client", include_in_schema=False)
    def client(request: Request) -> dict[str, str | None]:
        return {"host": request.client.host if request.client else None}

    @app.get("/_scheme", include_in_schema=False)
    def scheme(request: Request) -> str:
        return request.url.scheme

    with Running(app, settings) as running:
        yield running.base_url, request.param


def test_the_client_address_is_taken_only_from_trusted_proxies(served: tuple[str, str]) -> None:
    base_url, trusted = served
    for forwarded, client in CASES[trusted]:
        headers = [("X-Forwarded-For", value) for value in forwarded]
        response = httpx.get(f"{base_url}/_client", headers=headers)
        assert response.json() == {"host": client}, (trusted, forwarded)


def test_the_scheme_is_taken_only_from_trusted_proxies(served: tuple[str, str]) -> None:
    base_url, trusted = served
    believed = trusted != ""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    assert httpx.get(f"{base_url}/_scheme", headers=headers).json() == (
        "https" if believed else "http"
    )
    # The console's HSTS header follows: only a trusted proxy can say the client used HTTPS.
    login = httpx.get(f"{base_url}/console/login", headers=headers)
    assert ("strict-transport-security" in login.headers) is believed


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


@given(
    hops=st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=6),
    trusted_count=st.integers(min_value=0, max_value=6),
)
def test_no_address_left_of_an_untrusted_hop_is_ever_believed(
    hops: list[str], trusted_count: int
) -> None:
    trusted = {"127.0.0.1", *hops[max(0, len(hops) - trusted_count) :]}
    middleware = TrustedProxies(_nothing, _networks(",".join(trusted)))
    client = middleware.client_of("127.0.0.1", [", ".join(hops)])
    # The first untrusted hop from the right; only when every hop is trusted, the leftmost.
    expected = next((hop for hop in reversed(hops) if hop not in trusted), hops[0])
    assert client == expected


def test_settings_refuse_a_proxy_that_is_no_address() -> None:
    with pytest.raises(ValueError, match="KEYPLANE_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.internal")
