"""Broken function-level authorization in the console, proven absent: every signed-in page
and form, for a real user of each built-in role, refuses exactly when the API's declared
policy (``keyplane.api.policy``) refuses the operations it performs, with a 403 page naming
the missing scope, and a refused form changes nothing.

The console's own checks (``console.require`` in each handler) are thus held to the one
policy table: a page that forgot its check, or checks another scope than the API does for the
same act, fails here. A new console route fails until ``AS_API`` says what it does.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from test_routes import ConsoleRoute, console_routes

from keyplane.api.policy import POLICY
from keyplane.domain.catalogue import Catalogue
from keyplane.domain.models import Role
from keyplane.domain.roles import ROLES, role_scopes

from conftest import Api, CreatedKeys, Org, Server
from support.operations import HOOK_URL, NEVER, made_for, snapshot

# Pages a visitor uses before having a session: no role applies. Signing out is for every
# role (test_signin.py covers it) and would end the sessions this matrix shares. Choosing
# an organization comes before any role, and only offers the person's own memberships
# (test_signin.py and tests/unit/services/test_signin_service.py).
PRE_SESSION = {
    "/console/login",
    "/console/set-password/{token}",
    "/console/logout",
    "/console/organizations",
}

# console route -> the API operations it performs (their scopes are what it must require)
AS_API: dict[str, tuple[str, ...]] = {
    "GET /console": (),  # a redirect to the keys
    "GET /console/keys": ("GET /v1/keys",),
    "GET /console/audit": ("GET /v1/audit-events",),
    "GET /console/keys/new": ("POST /v1/keys",),
    "POST /console/keys": ("POST /v1/keys",),
    "GET /console/keys/{key_id}/edit": ("PATCH /v1/keys/{key_id}",),
    "POST /console/keys/{key_id}/edit": ("PATCH /v1/keys/{key_id}",),
    "POST /console/keys/{key_id}/rotate": ("POST /v1/keys/{key_id}/rotate",),
    "POST /console/keys/{key_id}/delete": ("DELETE /v1/keys/{key_id}",),
    "GET /console/apps": ("GET /v1/apps",),
    "GET /console/apps/new": ("POST /v1/apps",),
    "POST /console/apps": ("POST /v1/apps",),
    "GET /console/apps/{app_id}": ("GET /v1/apps/{app_id}",),
    "POST /console/apps/{app_id}/rename": ("PATCH /v1/apps/{app_id}",),
    "POST /console/apps/{app_id}/scopes": ("PATCH /v1/apps/{app_id}",),
    "POST /console/apps/{app_id}/ratelimits": ("PATCH /v1/apps/{app_id}",),
    "GET /console/apps/{app_id}/keys": (),  # a redirect to the app's page, which checks
    "POST /console/apps/{app_id}/keys": ("GET /v1/apps/{app_id}", "POST /v1/keys"),
    "POST /console/apps/{app_id}/delete": ("DELETE /v1/apps/{app_id}",),
    "GET /console/resources": ("GET /v1/resources",),
    "POST /console/resources": ("POST /v1/resources",),
    "POST /console/resources/{name}/delete": ("DELETE /v1/resources/{name}",),
    "GET /console/resources/presets": ("GET /v1/presets",),
    "GET /console/resources/presets/new": ("POST /v1/presets",),
    "POST /console/resources/presets/new": ("POST /v1/presets",),
    "GET /console/resources/presets/{preset_id}/edit": ("PATCH /v1/presets/{preset_id}",),
    "POST /console/resources/presets/{preset_id}/edit": ("PATCH /v1/presets/{preset_id}",),
    "POST /console/resources/presets/{preset_id}/delete": ("DELETE /v1/presets/{preset_id}",),
    "GET /console/profiles": ("GET /v1/profiles",),
    "GET /console/profiles/new": ("POST /v1/profiles",),
    "POST /console/profiles/new": ("POST /v1/profiles",),
    "GET /console/profiles/{profile_id}/edit": ("PATCH /v1/profiles/{profile_id}",),
    "POST /console/profiles/{profile_id}/edit": ("PATCH /v1/profiles/{profile_id}",),
    "POST /console/profiles/{profile_id}/delete": ("DELETE /v1/profiles/{profile_id}",),
    "GET /console/users": ("GET /v1/users",),
    "POST /console/users": ("POST /v1/users",),
    "POST /console/users/{user_id}/role": ("PATCH /v1/users/{user_id}",),
    "POST /console/users/{user_id}/delete": ("DELETE /v1/users/{user_id}",),
    "GET /console/settings": ("GET /v1/org",),
    "GET /console/usage": ("GET /v1/analytics/usage", "GET /v1/analytics/top-keys"),
    "POST /console/settings": ("PATCH /v1/org",),
    "GET /console/webhooks": ("GET /v1/webhooks",),
    "GET /console/webhooks/new": ("POST /v1/webhooks",),
    "POST /console/webhooks": ("POST /v1/webhooks",),
    "GET /console/webhooks/{webhook_id}": (
        "GET /v1/webhooks/{webhook_id}",
        "GET /v1/webhooks/{webhook_id}/deliveries",
    ),
    "POST /console/webhooks/{webhook_id}/edit": ("PATCH /v1/webhooks/{webhook_id}",),
    "GET /console/webhooks/{webhook_id}/roll-secret": (),  # a redirect to the webhook's page
    "POST /console/webhooks/{webhook_id}/roll-secret": (
        "POST /v1/webhooks/{webhook_id}/roll-secret",
    ),
    "POST /console/webhooks/{webhook_id}/test": ("POST /v1/webhooks/{webhook_id}/test",),
    "POST /console/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": (
        "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    ),
    "POST /console/webhooks/{webhook_id}/delete": ("DELETE /v1/webhooks/{webhook_id}",),
}


def _forms() -> dict[str, dict[str, str]]:
    """A form each route would accept from someone allowed (fresh names every time)."""
    unique = secrets.token_hex(4)
    profile = {"name": f"forbidden-{unique}", "description": "", "settings": "{}"}
    preset = {"name": f"forbidden-{unique}", "scope": "resources:read"}
    return {
        "POST /console/keys": {"name": "forbidden", "expiration": "30"},
        "POST /console/keys/{key_id}/edit": {"status": "inactive"},
        "POST /console/keys/{key_id}/rotate": {"grace_period_seconds": "3600"},
        "POST /console/apps": {"name": f"forbidden-{unique}"},
        "POST /console/apps/{app_id}/rename": {"name": f"forbidden-{unique}"},
        "POST /console/apps/{app_id}/scopes": {"scope": "apps:read"},
        "POST /console/apps/{app_id}/ratelimits": {"ratelimits": "hour 100 3600"},
        "POST /console/apps/{app_id}/keys": {"name": "forbidden", "expiration": "30"},
        "POST /console/resources": {"name": f"forbidden{unique}"},
        "POST /console/resources/presets/new": preset,
        "POST /console/resources/presets/{preset_id}/edit": preset,
        "POST /console/profiles/new": profile,
        "POST /console/profiles/{profile_id}/edit": profile,
        "POST /console/users": {"email": f"forbidden-{unique}@example.com", "role": "viewer"},
        "POST /console/users/{user_id}/role": {"role": "admin"},
        "POST /console/settings": {"name": f"Forbidden {unique}"},
        "POST /console/webhooks": {"url": HOOK_URL, "event": "*"},
        "POST /console/webhooks/{webhook_id}/edit": {"url": HOOK_URL, "event": "key.created"},
    }


ROUTES = [route for route in console_routes() if route.path not in PRE_SESSION]
ROUTE_IDS = [str(route) for route in ROUTES]


def test_every_signed_in_console_route_says_what_it_does_in_api_terms() -> None:
    assert len(ROUTES) >= 30  # the route table was really read
    assert {str(route) for route in ROUTES} == AS_API.keys()
    assert {op for ops in AS_API.values() for op in ops} <= {
        f"{method} {path}" for method, path in POLICY
    }


def _scope(operation: str) -> str | None:
    method, path = operation.split(" ", 1)
    return POLICY[(method, path)]


@dataclass
class Tenant:
    """An organization with one signed-in user of each built-in role."""

    owner: Api  # a full-access key, to make targets and take snapshots
    sessions: dict[Role, tuple[str, str, str]]  # role -> (user id, session token, CSRF token)


_TENANTS: dict[str, tuple[str, dict[Role, tuple[str, str, str]]]] = {}


@pytest.fixture
def tenant(server: Server, created_keys: CreatedKeys) -> Iterator[Tenant]:
    """One per server for the whole session: four argon2 sign-ins are enough."""
    if server.base_url not in _TENANTS:
        org = Org(server, created_keys)
        sessions: dict[Role, tuple[str, str, str]] = {}
        for number, role in enumerate(ROLES):
            email = f"{role}-{secrets.token_hex(4)}@example.com"
            password = f"console bfla {secrets.token_hex(8)}"
            made = org.api.post(
                "/v1/users", json={"email": email, "role": role, "password": password}
            )
            assert made.status_code == 201, made.text
            signed_in = server.kp.signin.sign_in(email, password, f"127.86.0.{number + 1}")
            created_keys.add_token(signed_in.token)
            sessions[role] = (made.json()["id"], signed_in.token, signed_in.csrf_token)
        _TENANTS[server.base_url] = (org.api.key, sessions)
    key, sessions = _TENANTS[server.base_url]
    yield Tenant(Api(server, key, created_keys), sessions)
    created_keys.close_clients()


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_each_role_may_use_a_console_page_exactly_when_the_api_policy_allows_it(
    server: Server, tenant: Tenant, route: ConsoleRoute
) -> None:
    method, path, params = route.method, route.path, route.path_params
    needed = {_scope(op) for op in AS_API[str(route)]} - {None}
    catalogue = Catalogue(())
    ids = made_for(tenant.owner, params)
    before = snapshot(tenant.owner)
    refused = set()

    for role in ROLES:
        _, session, csrf = tenant.sessions[role]
        held = role_scopes(role, catalogue)
        missing = sorted(scope for scope in needed if scope and not held.covers(scope))
        with httpx.Client(
            base_url=server.base_url, headers={"Cookie": f"kp_session={session}"}, timeout=15
        ) as console:
            if missing:  # the real act, with a form that would work: refused, no change
                refused.add(role)
                form = {"csrf_token": csrf, **_forms().get(str(route), {})}
                response = console.request(method, path.format(**ids), data=form)
                assert response.status_code == 403, f"{role}: {response.status_code}"
                assert any(repr(scope) in html.unescape(response.text) for scope in missing), role
                assert snapshot(tenant.owner) == before, role
            else:  # allowed: a harmless call (no such id, an empty form) is never a 403
                absent = {param: NEVER[param]() for param in params}
                form = {"csrf_token": csrf} if method == "POST" else None
                response = console.request(method, path.format(**absent), data=form)
                assert response.status_code in (200, 303, 404, 422), f"{role}: {response.text}"
                if response.status_code == 303:
                    assert "/console/login" not in response.headers["location"], role
    # Two corners of the role table, stated independently of domain/roles.py.
    assert "owner" not in refused
    assert ("viewer" in refused) == any(not str(s).endswith(":read") for s in needed)


# A member's own role, posted by that member: every more powerful role is refused.
RAISES = [
    (role, higher)
    for role in ROLES
    for higher in ROLES
    if role_scopes(role, Catalogue(())) != role_scopes(higher, Catalogue(()))
    and role_scopes(role, Catalogue(())).issubset(role_scopes(higher, Catalogue(())))
]


@pytest.mark.parametrize(("role", "higher"), RAISES, ids=[f"{r}->{h}" for r, h in RAISES])
def test_no_member_can_raise_their_own_role(
    server: Server, tenant: Tenant, role: Role, higher: Role
) -> None:
    user_id, session, csrf = tenant.sessions[role]
    before = snapshot(tenant.owner)
    with httpx.Client(
        base_url=server.base_url, headers={"Cookie": f"kp_session={session}"}, timeout=15
    ) as console:
        response = console.post(
            f"/console/users/{user_id}/role", data={"csrf_token": csrf, "role": higher}
        )

    assert response.status_code == 403, response.text
    said = html.unescape(response.text)
    assert "does not include" in said or "Only an owner can make" in said
    assert snapshot(tenant.owner) == before
    assert tenant.owner.get(f"/v1/users/{user_id}").json()["role"] == role
