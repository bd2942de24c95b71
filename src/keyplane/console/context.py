"""Who is signed in, CSRF checks, and rendering pages for them.

Console handlers are plain ``def`` functions: FastAPI runs them in its threadpool, so the
synchronous services they call (argon2, database transactions) never block the event loop.
The only ``async`` piece is reading a posted form, done by the ``SignedForm`` dependency,
which checks the CSRF token before any handler sees the form: no handler can forget it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse

from keyplane.api.deps import from_request
from keyplane.container import Keyplane
from keyplane.domain.models import User
from keyplane.services.common import Principal

SESSION_COOKIE = "kp_session"
LOGIN_CSRF_COOKIE = "kp_login_csrf"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


class NeedsSignIn(Exception):
    """No valid session: the error handler sends the browser to the sign-in page."""


class BadCsrf(Exception):
    """A form without this session's CSRF token (forged, or from an old page)."""


class PageForbidden(Exception):
    """The signed-in user lacks the scope a page or action needs."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


class PageNotFound(Exception):
    """No such object in the user's organization."""


@dataclass(frozen=True, slots=True)
class Console:
    """A signed-in request: the services, the user and what they may do."""

    kp: Keyplane
    request: Request
    user: User
    principal: Principal
    csrf_token: str

    def can(self, scope: str) -> bool:
        return self.principal.scopes.covers(scope)

    def require(self, scope: str) -> None:
        if not self.can(scope):
            raise PageForbidden(scope)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return page(self.request, template, status_code, console=self, **context)

    async def form(self) -> FormData:
        """The posted form, after checking its CSRF token against the session's.

        Prefer ``SignedForm``, which does this before the handler runs (and lets the
        handler be a plain ``def``).
        """
        form = await self.request.form()
        check_csrf(form, self.csrf_token)
        return form


def check_csrf(form: FormData, expected: str) -> None:
    """The form's ``csrf_token`` must equal ``expected`` (compared in constant time)."""
    sent = form.get("csrf_token")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise BadCsrf


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A rendered console page. Pages hold CSRF tokens and sometimes secrets: never cached.
    The security headers (CSP, framing, HSTS, ...) come from ``ConsoleHeaders``, which also
    covers redirects and error pages."""
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _console(request: Request) -> Console:
    kp: Keyplane = request.app.state.keyplane
    token = request.cookies.get(SESSION_COOKIE)
    resumed = kp.signin.resume(token) if token else None
    if resumed is None:
        raise NeedsSignIn
    principal = from_request(resumed.principal, request)
    return Console(kp, request, resumed.user, principal, resumed.session.csrf_token)


SignedIn = Annotated[Console, Depends(_console)]


class Posted(NamedTuple):
    """A signed-in request's posted form, its CSRF token already checked."""

    console: Console
    form: FormData


async def _signed_form(console: SignedIn) -> Posted:
    # Async only to read the body; no service is called here. ``_console`` (sync, in the
    # threadpool) has resolved the session before this runs.
    form = await console.request.form()
    check_csrf(form, console.csrf_token)
    return Posted(console, form)


SignedForm = Annotated[Posted, Depends(_signed_form)]


def relative(value: datetime | None, now: datetime | None = None) -> str:
    """'3 minutes ago', 'in 5 days', or 'never'."""
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (value - now).total_seconds()
    future, seconds = seconds > 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def exact(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


TEMPLATES.env.filters["relative"] = relative
TEMPLATES.env.filters["exact"] = exact
