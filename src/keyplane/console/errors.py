"""How the console answers a missing session, a bad CSRF token, a missing scope and a
database that failed."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from starlette.responses import RedirectResponse

from keyplane.api.errors import on_storage_unavailable
from keyplane.console.context import BadCsrf, NeedsSignIn, PageForbidden, PageNotFound, page
from keyplane.domain.errors import StorageUnavailable


async def _sign_in_first(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)


async def _bad_csrf(request: Request, _exc: Exception) -> Response:
    return page(
        request,
        "error.html",
        403,
        title="This form could not be accepted",
        message="It did not carry this session's security token: it may be from an old page "
        "or from another site. Reload the page and try again.",
    )


async def _forbidden(request: Request, exc: Exception) -> Response:
    scope = exc.scope if isinstance(exc, PageForbidden) else ""
    return page(
        request,
        "error.html",
        403,
        title="You do not have permission to do this",
        message=f"Your role does not include {scope!r}. Ask an owner or admin if you need it.",
    )


async def _not_found(request: Request, _exc: Exception) -> Response:
    return page(
        request,
        "error.html",
        404,
        title="Not found",
        message="There is nothing here in your organization. It may have been deleted.",
    )


async def _unavailable(request: Request, exc: Exception) -> Response:
    # One handler per exception class serves the whole app: console pages get a page, the
    # API keeps its problem document.
    if not request.url.path.startswith("/console"):
        return await on_storage_unavailable(request, exc)
    assert isinstance(exc, StorageUnavailable)  # noqa: S101 - registered for it only
    response = page(
        request,
        "error.html",
        503,
        title="The database is unavailable",
        message="Nothing was changed. Try again in a few seconds; if this persists, the "
        "server's log says why.",
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def install_console_errors(app: FastAPI) -> None:
    app.add_exception_handler(NeedsSignIn, _sign_in_first)
    app.add_exception_handler(BadCsrf, _bad_csrf)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(PageNotFound, _not_found)
    app.add_exception_handler(StorageUnavailable, _unavailable)
