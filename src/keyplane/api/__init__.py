"""The HTTP layer: routers, error handlers and guards, installed on a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from keyplane.api.errors import install_error_handlers, problem
from keyplane.api.middleware import BodyTooLarge, RequestGuard
from keyplane.api.routes import apps, health, keys, org, profiles, resources, users, verify
from keyplane.domain.limits import REQUEST_BODY_MAX_BYTES


async def _on_body_too_large(_request: Request, _exc: Exception) -> Response:
    return problem(
        413,
        "payload-too-large",
        "Request body too large",
        f"Request bodies are limited to {REQUEST_BODY_MAX_BYTES} bytes.",
    )


def install(app: FastAPI) -> None:
    install_error_handlers(app)
    app.add_exception_handler(BodyTooLarge, _on_body_too_large)
    app.add_middleware(RequestGuard)
    app.include_router(health.router)
    app.include_router(verify.router)  # before keys: /v1/keys/verify is not a key id
    for feature in (keys, apps, profiles, resources, users, org):
        app.include_router(feature.router)
