"""keyplane_client.testing.MockKeyplane: verdicts as keyplane gives them (compared with the
real server's), problem documents, and the README's example run with pytest."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keyplane.domain.tokens import mint_key, parse_key
from keyplane_client import (
    AsyncKeyplane,
    AuthenticationError,
    Keyplane,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from keyplane_client.testing import MockKeyplane, well_formed

from conftest import Org
from support.aio import run

SDK = Path(__file__).resolve().parents[2] / "clients" / "python"
MARKER = "<!-- tests/sdk/test_sdk_mock.py"


@pytest.fixture
def mock() -> MockKeyplane:
    return MockKeyplane()


@pytest.fixture
def kp(mock: MockKeyplane) -> Iterator[Keyplane]:
    with Keyplane("https://keyplane.test", mock.api_key, transport=mock, max_retries=0) as client:
        yield client


def test_add_key_returns_a_well_formed_test_key(mock: MockKeyplane) -> None:
    key = mock.add_key(scopes=["models:read"])
    assert re.fullmatch(r"kp_test_[0-9A-Za-z]{38}", key)
    assert well_formed(key)
    assert parse_key(key) is not None  # keyplane's own check: the checksum holds
    assert parse_key(mock.add_key(environment="live")) is not None
    assert well_formed(mint_key("live"))
    assert not well_formed(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert mock.key_id(key).startswith("key_")
    assert key not in repr(mock)


@pytest.mark.parametrize(
    ("held", "asked", "code", "missing"),
    [
        (["models:read"], ["models:read"], "VALID", []),
        (["models:*"], ["models:deploy"], "VALID", []),
        (["*"], ["anything:at_all", "models:*"], "VALID", []),
        ([], ["models:*"], "VALID", []),  # no scopes: full access
        (["models:read"], ["models:write"], "INSUFFICIENT_SCOPE", ["models:write"]),
        (["models:read", "models:write"], ["models:*"], "INSUFFICIENT_SCOPE", ["models:*"]),
        (["models:*"], ["*"], "INSUFFICIENT_SCOPE", ["*"]),
    ],
)
def test_scopes_follow_keyplane_wildcards(
    mock: MockKeyplane,
    kp: Keyplane,
    held: list[str],
    asked: list[str],
    code: str,
    missing: list[str],
) -> None:
    verdict = kp.keys.verify(mock.add_key(scopes=held), scopes=asked)
    assert (verdict.code, verdict.missing_scopes) == (code, missing)
    assert verdict.valid is (code == "VALID")


def test_checks_run_in_keyplane_order(mock: MockKeyplane, kp: Keyplane) -> None:
    key = mock.add_key(scopes=["models:read"], ip_allowlist=["203.0.113.0/24"])
    assert kp.keys.verify(key, scopes=["models:read"], ip="203.0.113.9").code == "VALID"
    assert kp.keys.verify(key, scopes=["models:write"], ip="198.51.100.1").code == "IP_FORBIDDEN"
    assert kp.keys.verify(key, scopes=["models:read"]).code == "IP_FORBIDDEN"
    mock.disable(mock.key_id(key))
    assert kp.keys.verify(key, ip="198.51.100.1").code == "DISABLED"
    mock.expire(key)
    assert kp.keys.verify(key).code == "EXPIRED"
    mock.remove(key)
    assert kp.keys.verify(key).code == "NOT_FOUND"
    assert kp.keys.verify("kp_test_typo").code == "NOT_FOUND"
    naive = mock.add_key(expires_at=datetime(2000, 1, 1))  # noqa: DTZ001 - taken as UTC
    assert kp.keys.verify(naive).code == "EXPIRED"


def test_rate_limits_and_quota_are_spent_only_when_all_admit(
    mock: MockKeyplane, kp: Keyplane
) -> None:
    key = mock.add_key(
        scopes=["models:read"],
        ratelimits=[{"name": "burst", "limit": 3, "period_seconds": 60}],
        quota=5,
    )
    first = kp.keys.verify(key, cost=2)
    assert first.code == "VALID"
    assert [(r.name, r.limit, r.remaining) for r in first.ratelimits] == [("burst", 3, 1)]
    assert 0 < first.ratelimits[0].reset_seconds <= 60
    assert first.quota is not None
    assert first.quota.remaining == 3
    over = kp.keys.verify(key, cost=2)
    assert over.code == "RATE_LIMITED"
    assert over.quota is not None
    assert over.quota.remaining == 3  # a refusal spends nothing
    assert kp.keys.verify(key, cost=0).code == "VALID"
    used_up = mock.add_key(quota=1)
    assert kp.keys.verify(used_up).quota is not None
    assert kp.keys.verify(used_up).code == "USAGE_EXCEEDED"


def test_the_verdict_carries_what_the_key_carries(mock: MockKeyplane, kp: Keyplane) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    key = mock.add_key(
        scopes=["models:read", "models:deploy"],
        app_id="app_1",
        metadata={"plan": "pro"},
        profile={"name": "free-tier", "settings": {"max_tokens": 1024}},
        environment="live",
        expires_at=expires,
    )
    verdict = kp.keys.verify(key)
    assert verdict.key_id == mock.key_id(key)
    assert verdict.app_id == "app_1"
    assert verdict.scopes == ["models:deploy", "models:read"]
    assert verdict.metadata == {"plan": "pro"}
    assert verdict.environment == "live"
    assert verdict.expires_at == expires
    assert verdict.profile is not None
    assert (verdict.profile.name, verdict.profile.settings) == ("free-tier", {"max_tokens": 1024})
    assert verdict.profile.id.startswith("prf_")
    assert mock.verifications == [{"key": key[:8] + "…" + key[-4:], "scopes": []}]


def test_problem_documents_for_a_wrong_key_a_bad_body_and_other_routes(
    mock: MockKeyplane, kp: Keyplane
) -> None:
    key = mock.add_key()
    stranger = Keyplane("https://keyplane.test", "kp_test_wrong", transport=mock)
    with stranger, pytest.raises(AuthenticationError) as unauthenticated:
        stranger.keys.verify(key)
    assert unauthenticated.value.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(ValidationError) as invalid:
        kp.keys.verify("kp_test_x", scopes=["models", "ok:read"], ip="nope", cost=-1)
    assert [e.field for e in invalid.value.errors] == ["scopes[0]", "ip", "cost"]
    with pytest.raises(NotFoundError) as missing:
        kp.keys.get("key_1")
    assert missing.value.type == "urn:keyplane:problem:not-found"


def test_fail_next_answers_an_outage_the_client_retries(mock: MockKeyplane) -> None:
    key = mock.add_key()
    mock.fail_next(503, count=2, retry_after=0)
    with Keyplane("https://keyplane.test", mock.api_key, transport=mock) as kp:
        assert kp.keys.verify(key).valid
        mock.fail_next(503, count=3, retry_after=0)
        with pytest.raises(ServiceUnavailableError):
            kp.keys.verify(key)
    assert len(mock.requests) == 6


def test_the_async_client_works_with_the_mock(mock: MockKeyplane) -> None:
    key = mock.add_key(scopes=["models:read"])

    async def verify() -> tuple[str, str]:
        async with AsyncKeyplane("https://keyplane.test", mock.api_key, transport=mock) as kp:
            ok = await kp.keys.verify(key, scopes=["models:read"])
            no = await kp.keys.verify(key, scopes=["models:write"])
            return ok.code, no.code

    assert run(verify) == ("VALID", "INSUFFICIENT_SCOPE")


def _shape(verdict: dict[str, Any]) -> dict[str, Any]:
    """What the mock must reproduce: every field, its type, and the values that do not
    depend on ids."""
    return {
        name: (type(value).__name__, value if name in ("valid", "code", "scopes") else None)
        for name, value in verdict.items()
        if name not in ("key_id", "expires_at")
    }


def test_the_mock_answers_like_the_real_server(sdk_org: Org, mock: MockKeyplane) -> None:
    """The same situations asked of keyplane and of the mock give the same verdicts."""
    owner = sdk_org.api
    gateway = sdk_org.key_with("keys:verify")
    real_key = str(owner.create_key(scopes=["apps:read"], metadata={"a": 1})["key"])
    fake_key = mock.add_key(scopes=["apps:read"], metadata={"a": 1}, environment="live")
    real_full = str(owner.create_key()["key"])
    fake_full = mock.add_key(environment="live")
    with Keyplane("https://keyplane.test", mock.api_key, transport=mock) as kp:
        for real, fake, scopes in [
            (real_key, fake_key, ["apps:read"]),
            (real_key, fake_key, ["apps:write"]),
            (real_full, fake_full, ["models:deploy"]),
            ("kp_live_garbage", "kp_live_garbage", []),
        ]:
            from_server = gateway.verify(real, scopes)
            from_mock = kp.keys.verify(fake, scopes=scopes).model_dump(mode="json")
            assert _shape(from_mock) == _shape(from_server)


def _readme_blocks() -> tuple[str, str]:
    text = (SDK / "README.md").read_text()
    start = text.index(MARKER)
    blocks = re.findall(r"```python\n(.*?)```", text[start:], flags=re.DOTALL)
    return blocks[0], blocks[1]


def test_the_readme_example_runs_with_pytest(tmp_path: Path) -> None:
    app, tests = _readme_blocks()
    assert app.startswith("# app.py")
    assert tests.startswith("# test_app.py")
    (tmp_path / "app.py").write_text(app)
    (tmp_path / "test_app.py").write_text(tests)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(SDK / "src")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
