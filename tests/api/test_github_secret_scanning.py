"""POST /v1/github/secret-scanning: GitHub's partner alerts, signed with ECDSA P-256.

A locally generated key pair stands in for GitHub's: its public key is served, in GitHub's
format, by a small real HTTP server at KEYPLANE_GITHUB_KEYS_URL. A report is processed only
when its signature verifies over the raw body; a missing, unknown or wrong signature, or
keys that cannot be fetched, refuse it (fail closed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyplane.domain.errors import PartnerKeysUnavailable, SignatureRefused
from keyplane.domain.tokens import mint_key
from keyplane.metrics import NullMetrics
from keyplane.outbound import HttpFetcher
from keyplane.partners import GithubKeys

from conftest import CreatedKeys, Org, Server, _start_server
from support import problem

ENDPOINT = "/v1/github/secret-scanning"


class Signer:
    """A P-256 key pair and its identifier, as GitHub publishes one."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.pem = pem.decode()
        self.identifier = hashlib.sha256(pem).hexdigest()

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def published(self, *, current: bool = True) -> dict[str, Any]:
        return {"key_identifier": self.identifier, "key": self.pem, "is_current": current}


class KeysServer:
    """GitHub's public-keys URL, served from a thread; ``status`` other than 200 fails it."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps({"public_keys": outer.keys}).encode()
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/meta/public_keys"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> KeysServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def github() -> Signer:
    return Signer()


@pytest.fixture
def keys_server(github: Signer) -> Iterator[KeysServer]:
    server = KeysServer().start()
    server.keys = [github.published()]
    yield server
    server.stop()


@pytest.fixture
def scanning_server(database_url: str, keys_server: KeysServer) -> Iterator[Server]:
    server = _start_server(
        database_url,
        None,
        github_keys_url=keys_server.url,
        github_keys_refetch_seconds=0,
        metrics=True,
    )
    yield server
    server.stop()


@pytest.fixture
def acme(scanning_server: Server, created_keys: CreatedKeys) -> Org:
    return Org(scanning_server, created_keys)


def alert(*tokens: str) -> bytes:
    return json.dumps(
        [
            {
                "token": token,
                "type": "keyplane_api_key",
                "url": "https://github.com/octocat/hello/blob/abc/config.py",
                "source": "content",
            }
            for token in tokens
        ]
    ).encode()


def post(
    server: Server, body: bytes, identifier: str | None, signature: str | None
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if identifier is not None:
        headers["Github-Public-Key-Identifier"] = identifier
    if signature is not None:
        headers["Github-Public-Key-Signature"] = signature
    with httpx.Client(base_url=server.base_url, timeout=15) as client:
        return client.post(ENDPOINT, content=body, headers=headers)


def test_a_signed_alert_revokes_the_key_and_answers_github_feedback(
    scanning_server: Server, acme: Org, github: Signer
) -> None:
    made = acme.api.create_key(name="pushed to github")
    key = str(made["key"])
    body = alert(key, "kp_live_" + "x" * 38)

    answer = post(scanning_server, body, github.identifier, github.sign(body))

    assert answer.status_code == 202, answer.text
    assert answer.json() == [
        {
            "token_hash": hashlib.sha256(key.encode()).hexdigest(),
            "token_type": "keyplane_api_key",
            "label": "true_positive",
        },
        {
            "token_hash": hashlib.sha256(b"kp_live_" + b"x" * 38).hexdigest(),
            "token_type": "keyplane_api_key",
            "label": "false_positive",
        },
    ]
    scanning_server.kp.leaks.drain()
    assert acme.api.verify(key)["code"] == "DISABLED"
    [event] = acme.api.get("/v1/audit-events?action=key.leaked").json()["data"]
    assert event["actor"]["name"] == "Leak report (GitHub secret scanning)"
    assert event["details"]["source"] == (
        "https://github.com/octocat/hello/blob/abc/config.py (content)"
    )


@pytest.mark.parametrize(
    "forgery",
    ["no identifier", "no signature", "unknown identifier", "other key", "other body", "junk"],
)
def test_an_alert_whose_signature_does_not_hold_is_refused_and_not_processed(
    scanning_server: Server, acme: Org, github: Signer, forgery: str
) -> None:
    key = str(acme.api.create_key(name="safe")["key"])
    body = alert(key)
    identifier: str | None = github.identifier
    signature: str | None = github.sign(body)
    if forgery == "no identifier":
        identifier = None
    elif forgery == "no signature":
        signature = None
    elif forgery == "unknown identifier":
        identifier = "f" * 64
    elif forgery == "other key":
        signature = Signer().sign(body)
    elif forgery == "other body":
        signature = github.sign(alert(mint_key()))
    else:
        signature = "not base64!"

    answer = post(scanning_server, body, identifier, signature)

    assert problem(answer, 401)["type"] == "urn:keyplane:problem:signature-refused"
    scanning_server.kp.leaks.drain()
    assert acme.api.verify(key)["code"] == "VALID"
    metrics = httpx.get(scanning_server.base_url + "/metrics").text
    assert 'keyplane_leak_reports_total{outcome="signature_refused"}' in metrics


def test_keys_that_cannot_be_fetched_fail_closed_with_503(
    scanning_server: Server, acme: Org, github: Signer, keys_server: KeysServer
) -> None:
    keys_server.status = 500
    key = str(acme.api.create_key(name="safe")["key"])
    body = alert(key)

    answer = post(scanning_server, body, github.identifier, github.sign(body))

    assert problem(answer, 503)["type"] == "urn:keyplane:problem:partner-keys-unavailable"
    assert int(answer.headers["retry-after"]) >= 1
    scanning_server.kp.leaks.drain()
    assert acme.api.verify(key)["code"] == "VALID"

    keys_server.stop()  # down altogether, not only failing
    answer = post(scanning_server, body, github.identifier, github.sign(body))
    problem(answer, 503)
    assert acme.api.verify(key)["code"] == "VALID"


def test_a_malformed_alert_with_a_good_signature_is_a_422(
    scanning_server: Server, github: Signer
) -> None:
    body = json.dumps([{"token": 7}]).encode()
    answer = post(scanning_server, body, github.identifier, github.sign(body))
    problem(answer, 422, "[0].token", "[0].type")
    many = alert(*(["kp_live_" + "x" * 38] * 1001))
    answer = post(scanning_server, many, github.identifier, github.sign(many))
    # Over the body cap before the count: GitHub's entries are long.
    assert answer.status_code in (413, 422)


# GithubKeys on its own, with the same real HTTP server: the cache and its refetch rules.


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keys(server: KeysServer, clock: Clock, fetcher: HttpFetcher) -> GithubKeys:
    return GithubKeys(
        server.url, fetcher.get, NullMetrics(), ttl=3600, refetch_after=60, monotonic=clock
    )


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    made = HttpFetcher(timeout=5)
    yield made
    made.close()


def test_keys_are_cached_and_a_new_identifier_refetches_at_most_once_a_minute(
    keys_server: KeysServer, github: Signer, fetcher: HttpFetcher
) -> None:
    clock = Clock()
    keys = _keys(keys_server, clock, fetcher)
    body = b"[]"
    keys.verify(github.identifier, github.sign(body), body)
    keys.verify(github.identifier, github.sign(body), body)
    assert keys_server.hits == 1

    rotated = Signer()  # GitHub publishes a new key and signs with it
    keys_server.keys = [github.published(current=False), rotated.published()]
    clock.now += 61
    keys.verify(rotated.identifier, rotated.sign(body), body)
    assert keys_server.hits == 2
    for _ in range(3):  # forged identifiers: refused from the cache, no refetch
        with pytest.raises(SignatureRefused):
            keys.verify("0" * 64, rotated.sign(body), body)
    assert keys_server.hits == 2
    keys.verify(github.identifier, github.sign(body), body)  # the old key still verifies


def test_stale_keys_are_not_trusted_when_the_refetch_fails(
    keys_server: KeysServer, github: Signer, fetcher: HttpFetcher
) -> None:
    clock = Clock()
    keys = _keys(keys_server, clock, fetcher)
    body = b"[]"
    keys.verify(github.identifier, github.sign(body), body)
    keys_server.status = 503
    clock.now += 3601
    with pytest.raises(PartnerKeysUnavailable):
        keys.verify(github.identifier, github.sign(body), body)
    with pytest.raises(PartnerKeysUnavailable):  # and no new fetch for a minute
        keys.verify(github.identifier, github.sign(body), body)
    assert keys_server.hits == 2
    keys_server.status = 200
    clock.now += 61
    keys.verify(github.identifier, github.sign(body), body)


def test_a_document_without_p256_keys_is_unusable(
    keys_server: KeysServer, fetcher: HttpFetcher
) -> None:
    keys_server.keys = [{"key_identifier": "x", "key": "not a pem", "is_current": True}]
    keys = _keys(keys_server, Clock(), fetcher)
    with pytest.raises(PartnerKeysUnavailable):
        keys.verify("x", base64.b64encode(b"sig").decode(), b"[]")
