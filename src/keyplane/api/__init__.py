"""The HTTP layer: routers, error handlers and guards, installed on a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from keyplane.api.errors import install_error_handlers
from keyplane.api.middleware import RequestGuard
from keyplane.api.routes import apps, health, keys, org, profiles, resources, users, verify


def install(app: FastAPI) -> None:
    install_error_handlers(app)
    app.add_middleware(RequestGuard)
    app.include_router(health.router)
    app.include_router(verify.router)  # before keys: /v1/keys/verify is not a key id
    for feature in (keys, apps, profiles, resources, users, org):
        app.include_router(feature.router)
