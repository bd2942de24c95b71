"""domain/oauth.py: the token request's rules (RFC 6749 2.3.1, 3.2, 4.4, 5.2), the token
shape test, scope narrowing and lifetimes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from keyplane.domain.oauth import (
    OAuthError,
    contains_token,
    granted,
    lifetime,
    looks_like_token,
    parse_token_request,
)
from keyplane.domain.scopes import ScopeSet

GRANT = [("grant_type", "client_credentials")]
NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrZXlfMDEifQ." + "s" * 86


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_are_form_decoded() -> None:
    asked = parse_token_request(GRANT, _basic("key_a%3Ab", "kp+live"))
    assert (asked.client_id, asked.client_secret) == ("key_a:b", "kp live")
    assert asked.scope is None


def test_form_credentials_and_a_scope() -> None:
    form = [*GRANT, ("client_id", "key_a"), ("client_secret", "s"), ("scope", "a:read b:*")]
    asked = parse_token_request(form, None)
    assert (asked.client_id, asked.client_secret, asked.scope) == ("key_a", "s", ("a:read", "b:*"))


def test_an_empty_parameter_counts_as_omitted() -> None:
    assert parse_token_request([*GRANT, ("scope", "")], _basic("key_a", "s")).scope is None


@pytest.mark.parametrize(
    ("form", "authorization", "error"),
    [
        ([], _basic("key_a", "s"), "invalid_request"),
        ([("grant_type", "password")], _basic("key_a", "s"), "unsupported_grant_type"),
        ([*GRANT, *GRANT], _basic("key_a", "s"), "invalid_request"),
        ([*GRANT, ("client_id", "key_a")], _basic("key_a", "s"), "invalid_request"),
        ([*GRANT, ("client_id", "key_a")], None, "invalid_client"),
        (GRANT, None, "invalid_client"),
        (GRANT, "Basic not-base64!", "invalid_client"),
        (GRANT, "Basic " + base64.b64encode(b"no colon").decode(), "invalid_client"),
        (GRANT, "Bearer kp_live_x", "invalid_client"),
        ([*GRANT, ("scope", "models:read bad scope!")], _basic("key_a", "s"), "invalid_scope"),
    ],
)
def test_refusals(form: list[tuple[str, str]], authorization: str | None, error: str) -> None:
    with pytest.raises(OAuthError) as refused:
        parse_token_request(form, authorization)
    assert refused.value.error == error


def test_a_token_may_ask_only_for_what_its_key_holds() -> None:
    held = ScopeSet.of(["models:*", "apps:read"])
    assert granted(None, held) == held
    assert granted(["models:deploy"], held) == ScopeSet.of(["models:deploy"])
    with pytest.raises(OAuthError, match="exceeds"):
        granted(["apps:write"], held)
    with pytest.raises(OAuthError):
        granted(["*"], held)


def test_a_token_lives_the_setting_at_most_an_hour_and_never_past_its_key() -> None:
    assert lifetime(NOW, timedelta(minutes=15), None) == 900
    assert lifetime(NOW, timedelta(hours=5), None) == 3600
    assert lifetime(NOW, timedelta(minutes=15), NOW + timedelta(seconds=30)) == 30
    assert lifetime(NOW, timedelta(minutes=15), NOW - timedelta(seconds=1)) < 1


def test_tokens_are_recognised_by_shape_and_keys_are_not() -> None:
    assert looks_like_token(TOKEN)
    assert not looks_like_token("kp_live_" + "a" * 38)
    assert not looks_like_token("eyJ.eyJ.x")
    assert not looks_like_token(TOKEN + "." + "x")
    assert contains_token(f"/v1/apps?access_token={TOKEN}")
    assert not contains_token("/v1/apps?cursor=eyJhbGciOi")
