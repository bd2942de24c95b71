"""Sign in, choose an organization, sign out, and use a one-time set-password link.

Every POST here is a plain ``def`` (FastAPI runs it in the threadpool: argon2 and the
database never block the event loop) taking its form from an async dependency that has
already checked the CSRF token, so no handler can forget it.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse

from keyplane.api.routes.users import SETUP_LINK_PATH
from keyplane.console.context import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    NeedsSignIn,
    check_csrf,
    page,
)
from keyplane.console.forms import errors_of
from keyplane.container import Keyplane
from keyplane.domain.errors import InvalidCredentials, InvalidInput, NotFound, Throttled
from keyplane.services.signin import NeedsSession, NoOrganization
from keyplane.services.users import SetupLink

router = APIRouter()

DEFAULT_TARGET = "/console/keys"
CHOOSER = "/console/organizations"


def _secure(request: Request) -> bool:
    kp: Keyplane = request.app.state.keyplane
    return kp.settings.secure_cookies


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if not target:
        return DEFAULT_TARGET
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console") or "//" in target:
        return DEFAULT_TARGET
    return target


def _login_page(request: Request, status_code: int = 200, **context: object) -> HTMLResponse:
    return _pre_session_page(request, "login.html", status_code, **context)


def _pre_session_page(
    request: Request, template: str, status_code: int, **context: object
) -> HTMLResponse:
    """A page with a form posted before any session exists (sign-in, set-password): its CSRF
    token travels in a cookie as well as in the form (double submit)."""
    token = secrets.token_urlsafe(32)
    response = page(request, template, status_code, login_csrf=token, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
        path="/console",
    )
    return response


async def pre_session_form(request: Request) -> FormData:
    """The posted form of a page without a (chosen) session, after its double-submit CSRF
    check. Reading the body needs the event loop; the handlers that take it are plain
    ``def`` so argon2 and the database run in the threadpool."""
    form = await request.form()
    check_csrf(form, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    return form


def _session_csrf(request: Request) -> str:
    """The CSRF token of the cookie's live session, chosen or not (sync: the threadpool
    runs it, database and all); no session means signing in first."""
    kp: Keyplane = request.app.state.keyplane
    token = request.cookies.get(SESSION_COOKIE, "")
    expected = kp.signin.csrf_token(token) if token else None
    if expected is None:
        raise NeedsSignIn
    return expected


async def session_form(
    request: Request, expected: Annotated[str, Depends(_session_csrf)]
) -> FormData:
    """The posted form of a session that may not have chosen its organization yet (the
    chooser's sign-out), after its CSRF check. ``SignedForm`` needs a chosen one."""
    form = await request.form()
    check_csrf(form, expected)
    return form


PreSessionForm = Annotated[FormData, Depends(pre_session_form)]
SessionForm = Annotated[FormData, Depends(session_form)]


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _with_next(path: str, target: str) -> str:
    return f"{path}?{urlencode({'next': target})}" if target != DEFAULT_TARGET else path


def _session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
        path="/",
    )


@router.get("/console")
def console_home() -> Response:
    return RedirectResponse(DEFAULT_TARGET, status_code=303)


@router.get("/console/login")
def login_form(request: Request, next: str | None = None) -> Response:
    kp: Keyplane = request.app.state.keyplane
    target = _safe_next(next)
    token = request.cookies.get(SESSION_COOKIE)
    # Signed in but no organization chosen yet: every console page lands here (their
    # session does not resume), so this is where the chooser is offered.
    if token and kp.signin.resume(token) is None and kp.signin.csrf_token(token) is not None:
        return RedirectResponse(_with_next(CHOOSER, target), status_code=303)
    return _login_page(request, next=target)


@router.post("/console/login")
def login(request: Request, form: PreSessionForm) -> Response:
    kp: Keyplane = request.app.state.keyplane
    email = str(form.get("email", ""))
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    try:
        signed_in = kp.signin.sign_in(email, password, _ip(request))
    except InvalidCredentials:
        return _login_page(
            request, 401, email=email, next=target, error="The email or password is incorrect."
        )
    except NoOrganization as exc:
        return _login_page(request, 403, email=email, next=target, error=str(exc))
    except Throttled as exc:
        refused = _login_page(request, 429, email=email, next=target, error=str(exc))
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if signed_in.user is None:
        response = RedirectResponse(_with_next(CHOOSER, target), status_code=303)
    else:
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    _session_cookie(request, response, signed_in.token, signed_in.expires_in)
    return response


@router.get(CHOOSER)
def choose_form(request: Request, next: str | None = None) -> Response:
    """Which organization to act in; also reachable later, to switch."""
    kp: Keyplane = request.app.state.keyplane
    choosing = kp.signin.choosing(request.cookies.get(SESSION_COOKIE, ""))
    if choosing is None:
        return RedirectResponse(_with_next("/console/login", _safe_next(next)), status_code=303)
    return _pre_session_page(
        request, "choose_org.html", 200, choosing=choosing, next=_safe_next(next)
    )


@router.post(CHOOSER)
def choose(request: Request, form: PreSessionForm) -> Response:
    kp: Keyplane = request.app.state.keyplane
    token = request.cookies.get(SESSION_COOKIE, "")
    target = _safe_next(str(form.get("next", "")))
    try:
        kp.signin.choose(token, str(form.get("user_id", "")), _ip(request))
    except NeedsSession:
        return RedirectResponse(_with_next("/console/login", target), status_code=303)
    except NotFound:
        return _pre_session_page(
            request,
            "choose_org.html",
            404,
            choosing=kp.signin.choosing(token),
            next=target,
            error="You are not a member of that organization.",
        )
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/console/logout")
def logout(request: Request, _form: SessionForm) -> Response:
    """Ends the session, whether or not an organization was chosen (the chooser has a
    sign-out button too)."""
    kp: Keyplane = request.app.state.keyplane
    kp.signin.sign_out(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/console/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get(SETUP_LINK_PATH + "{token}")
def set_password_form(request: Request, token: str) -> Response:
    kp: Keyplane = request.app.state.keyplane
    mode = kp.users.setup_link(token)
    if mode is None:
        return _set_password_page(request, token, 404, expired=True)
    return _set_password_page(request, token, mode=mode)


def _set_password_page(
    request: Request, token: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    response = _pre_session_page(request, "set_password.html", status_code, token=token, **context)
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is a secret
    return response


@router.post(SETUP_LINK_PATH + "{token}")
def set_password(request: Request, token: str, form: PreSessionForm) -> Response:
    kp: Keyplane = request.app.state.keyplane
    password = str(form.get("password", ""))
    mode = kp.users.setup_link(token)
    if mode is None:
        return _set_password_page(request, token, 404, expired=True)
    if mode == "choose" and password != str(form.get("confirm", "")):
        return _set_password_page(
            request, token, 422, mode=mode, errors={"confirm": "The two passwords differ."}
        )
    try:
        kp.users.set_password_with_token(token, password)
    except (InvalidInput, NotFound, Throttled) as exc:
        return _link_refused(request, token, mode, exc)
    done = "password_set" if mode == "choose" else "joined"
    return RedirectResponse(f"/console/login?{done}=1", status_code=303)


def _link_refused(
    request: Request, token: str, mode: SetupLink, exc: InvalidInput | NotFound | Throttled
) -> HTMLResponse:
    if isinstance(exc, NotFound):
        return _set_password_page(request, token, 404, expired=True)
    if isinstance(exc, Throttled):
        refused = _set_password_page(request, token, 429, mode=mode, error=str(exc))
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if mode == "confirm":  # a wrong password burns the link (services/users.py)
        return _set_password_page(request, token, 422, burnt=True)
    return _set_password_page(request, token, 422, mode=mode, errors=errors_of(exc))
