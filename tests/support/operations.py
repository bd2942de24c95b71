"""The REST API's operations, read from its own OpenAPI document, and what the matrices need
to call each one: an object of each kind to point a path id at, a valid body, an id that
never existed, and a snapshot of what a call could have changed.

The tables here are keyed by what the document says (path parameter names, operations), so
a new route without an entry fails the matrices instead of slipping past them.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from keyplane.api import install
from keyplane.domain.ids import new_id
from keyplane.domain.tokens import mint_key

from conftest import Api


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    params: tuple[str, ...]
    has_body: bool  # a JSON body
    spec: Mapping[str, Any]
    # An OAuth protocol endpoint (POST /oauth/token): a form body and RFC 6749 answers, its
    # client authenticated by key id and key, not a bearer. The JSON API's matrices leave
    # it to tests/api/test_oauth_tokens.py.
    form: bool = False

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def collection(self) -> str:
        """The list this operation's objects appear in: ``/v1/keys`` for ``/v1/keys/{key_id}``."""
        return "/".join(self.path.split("/")[:3])

    def url(self, ids: Mapping[str, str]) -> str:
        return self.path.format(**ids)


_FORM = "application/x-www-form-urlencoded"


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document of the API layer, built without a server or a database."""
    app = FastAPI()
    install(app)
    return app.openapi()


def operations() -> list[Operation]:
    found = []
    for path, methods in document()["paths"].items():
        for method, spec in methods.items():
            params = tuple(p["name"] for p in spec.get("parameters", []) if p["in"] == "path")
            content = spec.get("requestBody", {}).get("content", {})
            json_body, form = "application/json" in content, _FORM in content
            found.append(Operation(method.upper(), path, params, json_body, spec, form))
    return found


OPERATIONS = operations()
OPERATION_IDS = [op.id for op in OPERATIONS]
BY_ID = {op.id: op for op in OPERATIONS}


def _unique(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}"


def _made(api: Api, path: str, body: dict[str, Any], field: str = "id") -> str:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()[field])


# path parameter -> how to make an object it can name, with a full-access key of its organization
FACTORIES: dict[str, Callable[[Api], str]] = {
    "key_id": lambda api: _made(api, "/v1/keys", {"name": "target", "scopes": ["apps:read"]}),
    "app_id": lambda api: _made(api, "/v1/apps", {"name": _unique("app")}),
    "profile_id": lambda api: _made(api, "/v1/profiles", {"name": _unique("profile")}),
    "name": lambda api: _made(
        api, "/v1/resources", {"name": f"res{secrets.token_hex(4)}"}, field="name"
    ),
    "preset_id": lambda api: _made(
        api, "/v1/presets", {"name": _unique("preset"), "scopes": ["resources:read"]}
    ),
    "user_id": lambda api: _made(
        api, "/v1/users", {"email": f"{_unique('target')}@example.com", "role": "viewer"}
    ),
}
# Webhook targets on loopback's discard port: nothing listens there, and the shared servers
# run no delivery job unless a test runs it.
HOOK_URL = "http://127.0.0.1:9/hooks"
FACTORIES["webhook_id"] = lambda api: _made(api, "/v1/webhooks", {"url": HOOK_URL, "events": ["*"]})


def _delivery(api: Api, webhook_id: str) -> str:
    response = api.post(f"/v1/webhooks/{webhook_id}/test")
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


FACTORIES["delivery_id"] = lambda api: _delivery(api, FACTORIES["webhook_id"](api))
# path parameter -> (the parameter it lives under, how to make one under that object)
NESTED: dict[str, tuple[str, Callable[[Api, str], str]]] = {
    "delivery_id": ("webhook_id", _delivery),
}
# Audit filters: a key acts (actor_id), an app is acted on (target_id).
FACTORIES["actor_id"] = FACTORIES["key_id"]
FACTORIES["parent_id"] = FACTORIES["key_id"]  # the key list's filter by parent
FACTORIES["target_id"] = FACTORIES["app_id"]

# path parameter -> an id of the right shape that names nothing
NEVER: dict[str, Callable[[], str]] = {
    "key_id": lambda: new_id("key"),
    "app_id": lambda: new_id("app"),
    "profile_id": lambda: new_id("prf"),
    "name": lambda: f"res{secrets.token_hex(4)}",
    "preset_id": lambda: new_id("pst"),
    "user_id": lambda: new_id("usr"),
    "actor_id": lambda: new_id("key"),
    "parent_id": lambda: new_id("key"),
    "target_id": lambda: new_id("app"),
    "webhook_id": lambda: new_id("whk"),
    "delivery_id": lambda: new_id("msg"),
}

# operation -> a body it accepts (fresh names each time, so it can run repeatedly)
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "POST /v1/keys/verify": lambda: {"key": "kp_live_" + "x" * 38, "scopes": ["apps:read"]},
    "POST /v1/keys": lambda: {"name": "made", "scopes": ["apps:read"]},
    "PATCH /v1/keys/{key_id}": lambda: {"description": "changed"},
    "POST /v1/keys/{key_id}/rotate": lambda: {"grace_period_seconds": 60},
    "POST /v1/keys/{key_id}/children": lambda: {"name": "delegated", "scopes": ["apps:read"]},
    "POST /v1/apps": lambda: {"name": _unique("made"), "scopes": ["apps:read"]},
    "PATCH /v1/apps/{app_id}": lambda: {"description": "changed"},
    "POST /v1/profiles": lambda: {"name": _unique("made"), "settings": {"tier": "gold"}},
    "PATCH /v1/profiles/{profile_id}": lambda: {"description": "changed"},
    "POST /v1/resources": lambda: {"name": f"made{secrets.token_hex(4)}"},
    "PATCH /v1/resources/{name}": lambda: {"description": "changed"},
    # resources:read: a scope every role allowed to save presets holds.
    "POST /v1/presets": lambda: {"name": _unique("made"), "scopes": ["resources:read"]},
    "PATCH /v1/presets/{preset_id}": lambda: {"description": "changed"},
    "POST /v1/users": lambda: {"email": f"{_unique('made')}@example.com", "role": "viewer"},
    "PATCH /v1/users/{user_id}": lambda: {"name": "Changed"},
    "PATCH /v1/org": lambda: {"name": _unique("Renamed org")},
    "POST /v1/webhooks": lambda: {"url": HOOK_URL, "events": ["key.created"]},
    "PATCH /v1/webhooks/{webhook_id}": lambda: {"description": "changed"},
    # A well-formed key nobody issued: the report is accepted and revokes nothing.
    "POST /v1/keys/leaked": lambda: {"keys": [mint_key()], "source": "the matrices"},
    # Never signed here: tests/api/test_github_secret_scanning.py signs its own.
    "POST /v1/github/secret-scanning": lambda: {"unsigned": True},
}

# Operations whose body is authenticated by a signature over its bytes (GitHub's secret
# scanning): without one they answer 401 before reading a field, so the matrices that send
# bodies (mass assignment, documented 2xx fields) leave them to their own tests.
SIGNED = frozenset({"POST /v1/github/secret-scanning"})

# What a public operation answers to a caller without credentials (200 unless listed).
PUBLIC_ANSWERS: dict[str, int] = {
    "POST /v1/keys/leaked": 202,
    "POST /v1/github/secret-scanning": 401,
}

# Public operations that judge the key the caller presents (so without one they answer 401,
# not 200), and the headers each needs besides, for an organization's id.
PRESENTED_KEY: dict[str, Callable[[str], dict[str, str]]] = {
    "GET /v1/auth/nginx": lambda org_id: {
        "X-Keyplane-Org": org_id,
        "X-Original-Method": "GET",
        "X-Original-URI": "/models/llama",
    },
}
# What lets a presented key through each of them: a body for PATCH /v1/org.
ADMITTING: dict[str, dict[str, Any]] = {
    "GET /v1/auth/nginx": {"route_table": [{"method": "*", "path": "/**", "scopes": []}]},
}


# Operations on the calling key itself: only a key creates its own children (policy
# KEY_ITSELF), and its children are listed where they are made.
OWN_KEY: frozenset[str] = frozenset(
    {"POST /v1/keys/{key_id}/children", "GET /v1/keys/{key_id}/children"}
)


def own_key_id(api: Api) -> str:
    """The id of the key ``api`` calls with (read from the server's verifier, in process)."""
    entry = api.server.kp.verifier.load(api.key)
    assert entry is not None
    return entry.key_id


def targets(api: Api, op: Operation) -> dict[str, str]:
    """One fresh object of ``api``'s organization for each path id of ``op`` (for an
    operation on the calling key itself, that key)."""
    if op.id in OWN_KEY:
        return {"key_id": own_key_id(api)}
    return made_for(api, op.params)


def made_for(api: Api, params: tuple[str, ...]) -> dict[str, str]:
    """One fresh object of ``api``'s organization for each path id in ``params`` (an object
    that lives under another, a delivery under its webhook, is made under that one)."""
    ids: dict[str, str] = {}
    for param in params:
        parent, make = NESTED.get(param, ("", None))
        ids[param] = make(api, ids[parent]) if make and parent in ids else FACTORIES[param](api)
    return ids


def never(op: Operation) -> dict[str, str]:
    return {param: NEVER[param]() for param in op.params}


def body(op: Operation) -> dict[str, Any] | None:
    return BODIES[op.id]() if op.has_body else None


def streams(op: Operation) -> bool:
    """An operation answering an endless stream (Server-Sent Events) on success."""
    return "text/event-stream" in op.spec["responses"].get("200", {}).get("content", {})


def call(
    api: Api | httpx.Client,
    op: Operation,
    ids: Mapping[str, str],
    json: dict[str, Any] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """``op``'s answer. A stream that opens is closed once its headers are in: a 2xx
    response then carries no body (it never ends); any other answer is read whole."""
    http = api.http if isinstance(api, Api) else api
    if not streams(op):
        return http.request(op.method, op.url(ids), json=json, **kwargs)
    with http.stream(op.method, op.url(ids), json=json, **kwargs) as response:
        if not response.is_success:
            response.read()
    return response


def _without_usage(value: Any) -> Any:
    # Calling the API with a key of the organization moves that key's last-used time:
    # bookkeeping of the call itself, not a change the call made.
    if isinstance(value, dict):
        return {k: _without_usage(v) for k, v in value.items() if k != "last_used_at"}
    if isinstance(value, list):
        return [_without_usage(v) for v in value]
    return value


def _everything(api: Api) -> Iterator[tuple[str, Any]]:
    for path in (
        "/v1/keys",
        "/v1/apps",
        "/v1/profiles",
        "/v1/resources",
        "/v1/presets",
        "/v1/users",
        "/v1/webhooks",
    ):
        items: list[Any] = []
        url = f"{path}?limit=100"
        while True:
            response = api.get(url)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["data"])
            if not page["next_cursor"]:
                break
            url = f"{path}?limit=100&cursor={page['next_cursor']}"
        yield path, items
    yield "/v1/org", api.get("/v1/org").json()


def snapshot(api: Api) -> dict[str, Any]:
    """Everything a full-access key of an organization can read, but last-used times."""
    return _without_usage(dict(_everything(api)))


def request_fields(op: Operation) -> list[tuple[str, str]]:
    """(where, name) of each query parameter and body field of ``op``: ``("body", "app_id")``."""
    found = [("query", p["name"]) for p in op.spec.get("parameters", []) if p["in"] == "query"]
    if op.has_body:
        schema = _resolve(next(iter(op.spec["requestBody"]["content"].values()))["schema"])
        found += [("body", name) for name in schema.get("properties", {})]
    return found


def response_schema(op: Operation, status: int) -> dict[str, Any] | None:
    documented = op.spec["responses"].get(str(status))
    assert documented is not None, f"{op.id} answered {status}, which it does not document"
    for media, content in documented.get("content", {}).items():
        if "json" in media and "schema" in content:
            schema: dict[str, Any] = content["schema"]
            return schema
    return None


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document()["components"]["schemas"][name]
    return schema


def undeclared(schema: Mapping[str, Any], value: Any, where: str = "") -> list[str]:
    """Every field of ``value`` (recursively) that ``schema`` does not declare."""
    schema = _resolve(schema)
    if "anyOf" in schema:  # a nullable or a union: the value matches one alternative
        if value is None:
            return []
        options = [
            undeclared(alternative, value, where)
            for alternative in schema["anyOf"]
            if _resolve(alternative).get("type") != "null"
        ]
        return min(options, key=len, default=[])
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        declared = schema["properties"]
        for name, item in value.items():
            here = f"{where}.{name}" if where else name
            if name not in declared:
                found.append(here)
            else:
                found += undeclared(declared[name], item, here)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += undeclared(schema["items"], item, f"{where}[{index}]")
    return found
