"""GET /metrics: the Prometheus text format, when KEYPLANE_METRICS=true (create_app installs
it; otherwise the path is unknown, 404 like any other).

Who should reach it: the Prometheus server, not the internet. It shares the API's port, so
either keep it off the public path (a load balancer that forwards /v1 and /console only, a
firewall) or set KEYPLANE_METRICS_TOKEN and give Prometheus the same bearer token
(``authorization: {credentials: …}`` in its scrape config). What it shows is never a key, a
digest, an id or an organization's name (keyplane.metrics bounds every label), but traffic
volumes and error rates are still an operator's business.

Not in the OpenAPI document: it is an operator's endpoint, not part of the API that clients
and gateways generate code from, and it exists only on some deployments. A bare Starlette
route, like /healthz's fast path: a scrape runs no FastAPI machinery.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyplane.api.errors import problem


def install_metrics(
    app: FastAPI, exposition: Callable[[], bytes], content_type: str, token: SecretStr | None
) -> None:
    expected = token.get_secret_value().encode() if token is not None else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "")
            presented = given[7:].strip().encode() if given[:7].lower() == "bearer " else b""
            if not hmac.compare_digest(presented, expected):
                return problem(
                    401,
                    "unauthenticated",
                    "Authentication required",
                    "GET /metrics needs the bearer token set in KEYPLANE_METRICS_TOKEN.",
                    headers={"WWW-Authenticate": 'Bearer realm="keyplane-metrics"'},
                )
        # Off the event loop: with several workers it reads every process's file.
        body = await run_in_threadpool(exposition)
        return Response(body, media_type=content_type)

    app.router.routes.insert(0, Route("/metrics", metrics, methods=["GET"]))
