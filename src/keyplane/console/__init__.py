"""The web console: server-rendered pages over the same services as the REST API.

Plain HTML forms (POST, then redirect), a little vanilla JavaScript for dialogs and copy
buttons, and usage charts drawn with a vendored uPlot (static/vendor/uplot): no CDN and no
build step. Every page checks its scope in the handler; templates
only hide controls the user may not use (``can(scope)``), the server refuses regardless.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from keyplane.console.errors import install_console_errors
from keyplane.console.headers import ConsoleHeaders
from keyplane.console.routes import (
    apps,
    audit,
    keys,
    org,
    presets,
    profiles,
    resources,
    session,
    usage,
    users,
    webhooks,
)

STATIC = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    install_console_errors(app)
    app.add_middleware(ConsoleHeaders)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    for feature in (
        session,
        keys,
        apps,
        presets,
        resources,
        profiles,
        users,
        org,
        usage,
        audit,
        webhooks,
    ):
        app.include_router(feature.router, include_in_schema=False)
