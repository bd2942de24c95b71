"""The HTTP layer: routers, error handlers and guards, installed on a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from keyplane.api.errors import install_error_handlers
from keyplane.api.middleware import RateLimitHeaders, RequestGuard
from keyplane.api.routes import (
    analytics,
    apps,
    audit,
    events,
    gateway,
    health,
    index,
    keys,
    leaks,
    oauth,
    org,
    presets,
    profiles,
    resources,
    users,
    verify,
    webhooks,
)
from keyplane.api.routes._docs import document_problems
from keyplane.api.routes.verify import ValidBodies, VerifyFastPath


def install(app: FastAPI) -> None:
    install_error_handlers(app)
    document_problems(app)
    app.state.valid_bodies = ValidBodies()  # per app: two apps in a process share nothing
    app.include_router(index.router)
    app.include_router(health.router)
    # The hot path: VerifyFastPath answers POST /v1/keys/verify inside the guard, ahead of
    # FastAPI; the documented FastAPI route shares its code and serves only the OpenAPI
    # document. Liveness is a bare Starlette route, so that the benchmark's "trivial
    # endpoint" is the stack's ceiling.
    # RateLimitHeaders inside the fast path: that one sends its own (routes/verify.py).
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(VerifyFastPath)
    app.add_middleware(RequestGuard)
    app.router.routes.insert(0, Route("/healthz", health.healthz, methods=["GET"]))
    app.include_router(verify.router)
    app.include_router(oauth.router)
    app.include_router(gateway.router)
    app.include_router(leaks.router)  # before keys: /v1/keys/leaked is no key id
    for feature in (
        keys,
        apps,
        profiles,
        resources,
        presets,
        users,
        org,
        analytics,
        audit,
        webhooks,
        events,
    ):
        app.include_router(feature.router)
