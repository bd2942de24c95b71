"""Broken object-level authorization in the console, proven absent for every page and form
that names an object in its path (generated from the console's route table).

An owner of one organization, signed in, opens each such page and posts each such form (with
a valid CSRF token and plausible fields) for an object of another organization: the answer
is exactly that for an id that never existed, and the other organization is unchanged.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

import httpx
import pytest
from test_routes import console_routes

from conftest import CreatedKeys, Org, Server
from support.operations import FACTORIES, HOOK_URL, NEVER, made_for, snapshot

# Set-password links name a one-time token, not an object of any organization.
NOT_OBJECTS = {"token"}

# route -> a form it would accept for an object of the caller's own organization
FORMS: dict[str, dict[str, str]] = {
    "POST /console/apps/{app_id}/rename": {"name": "hijacked", "description": "hijacked"},
    "POST /console/apps/{app_id}/scopes": {"scope": "apps:read"},
    "POST /console/apps/{app_id}/ratelimits": {"ratelimits": "burst 5 1"},
    "POST /console/apps/{app_id}/keys": {"name": "hijacker", "expiration": "30"},
    "POST /console/apps/{app_id}/delete": {},
    "POST /console/keys/{key_id}/edit": {"status": "inactive"},
    "POST /console/keys/{key_id}/rotate": {"grace_period_seconds": "3600"},
    "POST /console/keys/{key_id}/delete": {},
    "POST /console/profiles/{profile_id}/edit": {
        "name": "hijacked",
        "description": "hijacked",
        "settings": "{}",
    },
    "POST /console/profiles/{profile_id}/delete": {},
    "POST /console/resources/{name}/delete": {},
    "POST /console/resources/presets/{preset_id}/edit": {
        "name": "hijacked",
        "scope": "apps:read",
    },
    "POST /console/resources/presets/{preset_id}/delete": {},
    "POST /console/users/{user_id}/role": {"role": "owner"},
    "POST /console/users/{user_id}/delete": {},
    "POST /console/webhooks/{webhook_id}/edit": {"url": HOOK_URL, "event": "*", "enabled": "on"},
    "POST /console/webhooks/{webhook_id}/roll-secret": {},
    "POST /console/webhooks/{webhook_id}/test": {},
    "POST /console/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": {},
    "POST /console/webhooks/{webhook_id}/delete": {},
}


def _pages() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, path ids) of every console route naming an object in its path."""
    return [
        (route.method, route.path, route.path_params)
        for route in console_routes()
        if route.path_params and not set(route.path_params) & NOT_OBJECTS
    ]


PAGES = _pages()
PAGE_IDS = [f"{method} {path}" for method, path, _ in PAGES]


def test_every_console_page_naming_an_object_is_covered() -> None:
    assert len(PAGES) >= 15  # the route table was really read
    assert {p for _, _, params in PAGES for p in params} - FACTORIES.keys() == set()
    posts = {f"{method} {path}" for method, path, _ in PAGES if method == "POST"}
    assert posts - FORMS.keys() == set(), "a console form with a path id and no form here"


_SESSIONS: dict[str, tuple[str, str]] = {}


def _owner_session(server: Server, created: CreatedKeys) -> tuple[str, str]:
    """(session token, CSRF token) of an owner of a fresh organization, once per server."""
    if server.base_url not in _SESSIONS:
        org = Org(server, created)
        email = f"bola-{secrets.token_hex(4)}@example.com"
        password = f"console bola {secrets.token_hex(8)}"
        made = org.api.post(
            "/v1/users", json={"email": email, "role": "owner", "password": password}
        )
        assert made.status_code == 201, made.text
        signed_in = server.kp.signin.sign_in(email, password, "127.85.0.1")
        created.add_token(signed_in.token)
        _SESSIONS[server.base_url] = (signed_in.token, signed_in.csrf_token)
    return _SESSIONS[server.base_url]


def _normalised(response: httpx.Response, ids: Mapping[str, str]) -> str:
    page = response.text
    for param, ident in ids.items():
        page = page.replace(ident, "{" + param + "}")
    return re.sub(r'nonce="[^"]*"', 'nonce=""', page)


@pytest.mark.parametrize(("method", "path", "params"), PAGES, ids=PAGE_IDS)
def test_another_organizations_object_in_the_console_is_like_one_that_never_existed(
    server: Server,
    created_keys: CreatedKeys,
    other_org: Org,
    method: str,
    path: str,
    params: tuple[str, ...],
) -> None:
    session, csrf = _owner_session(server, created_keys)
    theirs = made_for(other_org.api, params)
    absent = {param: NEVER[param]() for param in params}
    before = snapshot(other_org.api)
    form = {"csrf_token": csrf, **FORMS[f"{method} {path}"]} if method == "POST" else None

    with httpx.Client(
        base_url=server.base_url, headers={"Cookie": f"kp_session={session}"}, timeout=15
    ) as console:
        answer = console.request(method, path.format(**theirs), data=form)
        never = console.request(method, path.format(**absent), data=form)

    assert answer.status_code == never.status_code, answer.text
    assert answer.status_code in (303, 404), answer.text
    if answer.status_code == 303:  # a bare redirect that looks nothing up
        assert "login" not in answer.headers["location"]
    assert _normalised(answer, theirs) == _normalised(never, absent)
    assert snapshot(other_org.api) == before
