"""Tokens verified by a third party from the JWKS endpoint (PyJWT's PyJWKClient over
loopback), re-fetched by Authlib when they expire, and signing key rotation: previous tokens
keep working, new ones carry the new kid, retired keys leave the JWKS; the private keys are
sealed in the database and appear in no log."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from keyplane.app import build
from keyplane.domain.audit import AuditQuery
from keyplane.jose import Sealer
from keyplane.services.signing import INSTANCE
from keyplane.settings import Settings
from keyplane.storage.engine import make_engine
from keyplane.storage.tables import signing_keys

from conftest import TEST_SECRET, Clock, LogCapture, Org, Server

JWKS = "/.well-known/jwks.json"


@pytest.fixture
def own(
    request: pytest.FixtureRequest, tmp_path: Path, log_capture: LogCapture
) -> Iterator[Server]:
    """A server of this test's own (SQLite), its tokens living two seconds (or as many as
    the test's indirect parameter says)."""
    url = f"sqlite:///{tmp_path / 'keyplane.db'}"
    clock = Clock()
    settings = Settings(
        database_url=url,
        secret_key=TEST_SECRET,
        token_lifetime_seconds=getattr(request, "param", 2),
        run_jobs=False,
        usage_flush_interval=0.05,
    )
    server = Server(build(settings, clock=clock), clock, url, tmp_path / "keyplane.db")
    server.start()
    yield server
    server.stop()


def _key(server: Server) -> tuple[str, str]:
    made = server.kp.orgs.create("Acme", "ops@acme.io")
    return made.key_id, made.api_key


def _token(server: Server, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _verified(server: Server, token: str) -> dict[str, object]:
    keys = jwt.PyJWKClient(f"{server.base_url}{JWKS}", cache_keys=False, cache_jwk_set=False)
    # The server's clock may run ahead of this one (tests move it): its iat is not early.
    ahead = max((server.clock() - datetime.now(UTC)).total_seconds(), 0.0)
    claims: dict[str, object] = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["EdDSA"],
        issuer="keyplane",
        options={"require": ["exp", "iat", "sub", "jti"]},
        leeway=ahead + 5,
    )
    return claims


def _kids(server: Server) -> set[str]:
    return {key["kid"] for key in httpx.get(f"{server.base_url}{JWKS}").json()["keys"]}


def test_pyjwkclient_verifies_tokens_from_the_jwks_endpoint(org: Org) -> None:
    key = org.api.create_key(name="machine", scopes=["apps:read"])
    token = _token(org.server, str(key["id"]), str(key["key"]))
    claims = _verified(org.server, token)
    assert claims["sub"] == key["id"]
    assert claims["scope"] == "apps:read"
    response = httpx.get(f"{org.server.base_url}{JWKS}")
    assert response.headers["cache-control"] == "public, max-age=60"
    assert all(set(k) == {"kty", "crv", "x", "kid", "alg", "use"} for k in response.json()["keys"])


def test_authlib_fetches_a_new_token_when_the_old_one_expires(own: Server) -> None:
    client_id, secret = _key(own)
    with OAuth2Client(
        client_id=client_id,
        client_secret=secret,
        token_endpoint=f"{own.base_url}/oauth/token",
        grant_type="client_credentials",
        leeway=0,
    ) as client:
        first = client.fetch_token()
        assert first["expires_in"] == 2
        assert client.get(f"{own.base_url}/v1/keys").status_code == 200
        time.sleep(2.2)
        assert client.get(f"{own.base_url}/v1/keys").status_code == 200
        assert client.token["access_token"] != first["access_token"]
    expired = httpx.get(
        f"{own.base_url}/v1/keys", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert expired.status_code == 401


@pytest.mark.parametrize("own", [600], indirect=True)
def test_rotation_keeps_previous_tokens_and_signs_new_ones_with_the_new_kid(
    own: Server,
) -> None:
    client_id, secret = _key(own)
    before = _token(own, client_id, secret)
    first_kid = jwt.get_unverified_header(before)["kid"]
    assert _kids(own) == {first_kid}

    rotation = own.kp.signing.rotate()
    assert rotation.previous == first_kid
    after = _token(own, client_id, secret)
    assert jwt.get_unverified_header(after)["kid"] == rotation.current.kid
    assert _kids(own) == {first_kid, rotation.current.kid}
    for token in (before, after):
        assert _verified(own, token)["sub"] == client_id
        answer = httpx.get(f"{own.base_url}/v1/keys", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200

    # A second rotation within the longest token lifetime keeps the first key published;
    # one after it retires the first key, which leaves the JWKS.
    second = own.kp.signing.rotate()
    assert second.retired == []
    assert _kids(own) == {first_kid, rotation.current.kid, second.current.kid}
    own.clock.advance(timedelta(hours=2))
    third = own.kp.signing.rotate()
    assert set(third.retired) == {first_kid, rotation.current.kid}
    assert _kids(own) == {second.current.kid, third.current.kid}
    states = {key.kid: key.state for key in own.kp.signing.list()}
    assert states[first_kid] == "retired"
    assert states[third.current.kid] == "current"

    with own.kp.store.read() as tx:
        events = tx.audit.page(INSTANCE, AuditQuery(), limit=10, after=None)
    assert [e.action for e in events].count("signing_key.rotate") == 3
    assert own.kp.audit.verify() == []


@pytest.mark.parametrize("own", [600], indirect=True)
def test_private_keys_are_sealed_in_the_database_and_never_logged(
    own: Server, tmp_path: Path, log_capture: LogCapture
) -> None:
    own.kp.signing.rotate()
    engine = make_engine(own.database_url)
    with engine.connect() as conn:
        rows = list(conn.execute(select(signing_keys.c.kid, signing_keys.c.private_key)))
    engine.dispose()
    assert len(rows) == 2
    mine, other = Sealer(TEST_SECRET.encode()), Sealer(b"another secret " + b"y" * 32)
    database = (tmp_path / "keyplane.db").read_bytes()
    for wal in tmp_path.glob("keyplane.db-wal"):
        database += wal.read_bytes()
    logs = "\n".join(log_capture.lines)
    for kid, sealed in rows:
        der = mine.open(sealed, kid)
        seed = der[-32:]  # PKCS#8 Ed25519: the 32-byte private key ends the structure
        for form in (seed, base64.urlsafe_b64encode(seed).rstrip(b"="), seed.hex().encode()):
            assert form not in database
            assert form.decode("latin-1") not in logs
        with pytest.raises(InvalidTag):
            other.open(sealed, kid)
        with pytest.raises(InvalidTag):
            mine.open(sealed, "sig_another")


@pytest.mark.parametrize("own", [600], indirect=True)
def test_token_requests_and_token_calls_spend_the_keys_rate_limits(own: Server) -> None:
    _, owner = _key(own)
    made = httpx.post(
        f"{own.base_url}/v1/keys",
        json={
            "name": "limited",
            "scopes": ["apps:read"],
            "ratelimits": [{"name": "burst", "limit": 3, "period_seconds": 600}],
        },
        headers={"Authorization": f"Bearer {owner}"},
    ).json()
    first = httpx.post(
        f"{own.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(made["id"], made["key"]),
    )
    assert first.status_code == 200
    assert first.headers["ratelimit"] == '"burst";r=2;t=200'
    token = first.json()["access_token"]
    call = httpx.get(f"{own.base_url}/v1/apps", headers={"Authorization": f"Bearer {token}"})
    assert call.status_code == 200
    assert call.headers["ratelimit"].startswith('"burst";r=1;')
    assert _token(own, made["id"], made["key"])
    refused = httpx.post(
        f"{own.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(made["id"], made["key"]),
    )
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
