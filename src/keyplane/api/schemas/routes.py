"""Request and response bodies: gateway route tables (domain/routes.py).

The shapes are checked here; the domain checks the rest (methods, path grammar, scopes
against the catalogue, duplicates) with messages that name the field, as
``route_table[1].path``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Request, Scope
from keyplane.domain.limits import SCOPES_MAX
from keyplane.domain.routes import METHODS, ROUTE_PATH_MAX, ROUTES_MAX, Route

ROUTE_TABLE_DOC = (
    "What `GET /v1/auth/nginx` requires of a request, in order: the first rule whose "
    "`method` and `path` match decides, and a request matching no rule is denied (403). "
    "`method`: " + ", ".join(METHODS) + " or `*`. `path` is matched against the decoded "
    "request path without its query string: `*` matches one or more characters within a "
    "segment, `**` (a whole segment) one or more segments; the rest is literal. `scopes`: "
    f"all required (`[]`: any valid key). At most {ROUTES_MAX} rules."
)


class RouteIn(Request):
    method: str = Field(min_length=1, max_length=10, examples=["GET", "*"])
    path: str = Field(min_length=1, max_length=ROUTE_PATH_MAX, examples=["/models/**"])
    scopes: list[Scope] = Field(max_length=SCOPES_MAX, examples=[["models:read"]])


class RouteOut(BaseModel):
    method: str
    path: str
    scopes: list[str]

    @classmethod
    def of(cls, route: Route) -> RouteOut:
        return cls(method=route.method, path=route.path, scopes=list(route.scopes))
