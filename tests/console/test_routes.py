"""Properties of every console route, generated from the route table so a new route is
covered the day it is added: handlers never run services on the event loop, and no form is
accepted without its CSRF token.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from test_signin import PASSWORD, Visitor, person

from keyplane.console import install_console

from conftest import CreatedKeys, Org, Server
from support.operations import made_for


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str
    endpoint: Callable[..., Any]
    dependant: Dependant
    path_params: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def console_routes() -> list[ConsoleRoute]:
    app = FastAPI()
    install_console(app)
    found = []
    for route in iter_route_contexts(app.routes):
        if route.endpoint is None or not (route.path or "").startswith("/console"):
            continue  # the static files mount
        dependant: Dependant = route.dependant
        for method in sorted(route.methods or ()):
            params = tuple(p.name for p in dependant.path_params)
            found.append(ConsoleRoute(method, route.path, route.endpoint, dependant, params))
    return found


ROUTES = console_routes()
FORMS = [r for r in ROUTES if r.method == "POST"]

# A coroutine handler runs on the event loop: a service call there (argon2, a database
# transaction) stalls every request of the process, verifications included. Each entry
# says why it may be async anyway.
ASYNC_ALLOWED: dict[str, str] = {
    "_signed_form": "reads the posted body (the one await) and checks its CSRF token; "
    "it calls no service",
    "pre_session_form": "the same for sign-in and set-password forms (double-submit cookie); "
    "it calls no service",
    "session_form": "the same for a session that may not have chosen its organization yet "
    "(logout, also from the chooser); its session is resolved by a sync dependency first",
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """The endpoint's dependencies, depth first (the endpoint itself is checked apart)."""
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def test_the_route_table_has_console_forms_to_check() -> None:
    assert len(FORMS) >= 20
    assert {"/console/keys", "/console/settings", "/console/logout"} <= {r.path for r in FORMS}


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_console_handler_or_dependency_is_a_coroutine_unless_allowed(
    route: ConsoleRoute,
) -> None:
    for call in (route.endpoint, *_calls(route.dependant)):
        if inspect.iscoroutinefunction(call):
            name = call.__name__
            assert name in ASYNC_ALLOWED, (
                f"{route}: {call.__module__}.{name} is async: make it a plain def (FastAPI "
                "runs it in the threadpool) and take the form from SignedForm"
            )


@dataclass
class Target:
    """An organization full of objects a forged form could change, and its owner's session."""

    org: Org
    visitor: Visitor
    path_values: dict[str, str]

    def snapshot(self) -> dict[str, Any]:
        """Everything a console form can change, as the REST API shows it."""
        api = self.org.api
        state: dict[str, Any] = {"org": api.get("/v1/org").json()}
        for listing in ("keys", "apps", "profiles", "presets", "resources", "users", "webhooks"):
            state[listing] = api.get(f"/v1/{listing}?limit=100").json()["data"]
        for key in state["keys"]:
            key.pop("last_used_at")  # the owner key's snapshots themselves move it
        return state


@pytest.fixture(scope="module")
def target(sqlite_server: Server, created_keys: CreatedKeys) -> Iterator[Target]:
    org = Org(sqlite_server, created_keys)
    api = org.api
    invited = api.post("/v1/users", json={"email": f"inv-{secrets.token_hex(4)}@example.com"})
    values = {
        "key_id": str(api.create_key(name="target key")["id"]),
        "app_id": api.post("/v1/apps", json={"name": "target", "scopes": ["apps:read"]}).json()[
            "id"
        ],
        "profile_id": api.post("/v1/profiles", json={"name": "target"}).json()["id"],
        "preset_id": api.post(
            "/v1/presets", json={"name": "target", "scopes": ["apps:read"]}
        ).json()["id"],
        "name": api.post("/v1/resources", json={"name": "models"}).json()["name"],
        "user_id": invited.json()["id"],
        **made_for(api, ("webhook_id", "delivery_id")),
        "token": invited.json()["set_password_url"].rsplit("/", 1)[1],
    }
    visitor = Visitor(sqlite_server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield Target(org, visitor, values)
    visitor.close()
    created_keys.close_clients()


# What a real form of any of these routes might carry: enough to change something.
PAYLOAD = {
    "name": "forged",
    "description": "forged",
    "email": "forged@example.com",
    "role": "admin",
    "status": "inactive",
    "scope": "apps:write",
    "expiration": "30",
    "actions": "read",
    "settings": '{"forged": true}',
    "password": PASSWORD,
    "confirm": PASSWORD,
    "max_key_lifetime_days": "7",
    "require_explicit_scopes": "on",
    "url": "http://127.0.0.1:9/forged",
    "event": "*",
    "enabled": "on",
}


@pytest.mark.parametrize("token", ["missing", "wrong"])
@pytest.mark.parametrize("route", FORMS, ids=str)
def test_a_console_form_without_its_csrf_token_is_refused_and_changes_nothing(
    target: Target, route: ConsoleRoute, token: str
) -> None:
    missing = set(route.path_params) - set(target.path_values)
    assert not missing, f"{route}: give test_routes.Target a real object for {missing}"
    path = route.path.format(**target.path_values)
    body = dict(PAYLOAD)
    if token == "wrong":
        body["csrf_token"] = secrets.token_urlsafe(32)
    before = target.snapshot()

    response = target.visitor.post(path, body)

    assert response.status_code == 403, f"{route}: {response.status_code}"
    assert response.headers["content-type"].startswith("text/html")
    assert "could not be accepted" in response.text
    assert target.snapshot() == before
    assert target.visitor.get("/console/keys").status_code == 200  # still signed in
