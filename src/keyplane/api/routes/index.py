"""GET /: where a newcomer lands. Browsers go to the console; API clients get links."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

router = APIRouter(tags=["health"])


class Index(BaseModel):
    name: str = Field(examples=["keyplane"])
    version: str
    console: str = Field(description="The web console (sign in with email and password).")
    docs: str | None = Field(description="Interactive API docs; null when turned off.")
    openapi: str = Field(description="The OpenAPI document.")
    api: str = Field(description="The REST API's base path.")


def _wants_html(accept: str) -> bool:
    # A browser's navigation asks for text/html first; curl and HTTP libraries send */*
    # or application/json. Only an explicit text/html goes to the console.
    return "text/html" in accept.lower()


@router.get(
    "/",
    summary="Index",
    response_model=Index,
    responses={303: {"description": "Browsers (`Accept: text/html`) are sent to the console."}},
)
def index(request: Request) -> Response | Index:
    """Links to the console, the docs, the OpenAPI document and the API."""
    if _wants_html(request.headers.get("accept", "")):
        return RedirectResponse("/console", status_code=303)
    app = request.app
    return Index(
        name="keyplane",
        version=app.version,
        console="/console",
        docs=app.docs_url,
        openapi=app.openapi_url or "/openapi.json",
        api="/v1",
    )
