"""Sign in, sign out, and choosing a password from a one-time link."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse

from keyplane.api.routes.users import SETUP_LINK_PATH
from keyplane.console.context import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SignedIn,
    check_csrf,
    page,
)
from keyplane.console.forms import errors_of
from keyplane.container import Keyplane
from keyplane.domain.errors import InvalidCredentials, InvalidInput, NotFound, Throttled

router = APIRouter()


def _secure(request: Request) -> bool:
    kp: Keyplane = request.app.state.keyplane
    return kp.settings.secure_cookies


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if not target:
        return "/console/keys"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console") or "//" in target:
        return "/console/keys"
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


async def _pre_session_form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(form, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    return form


@router.get("/console")
def console_home() -> Response:
    return RedirectResponse("/console/keys", status_code=303)


@router.get("/console/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next=_safe_next(next))


@router.post("/console/login")
async def login(request: Request) -> Response:
    kp: Keyplane = request.app.state.keyplane
    form = await _pre_session_form(request)
    email = str(form.get("email", ""))
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    ip = request.client.host if request.client else "unknown"
    try:
        signed_in = kp.signin.sign_in(email, password, ip)
    except InvalidCredentials:
        return _login_page(
            request, 401, email=email, next=target, error="The email or password is incorrect."
        )
    except Throttled as exc:
        refused = _login_page(request, 429, email=email, next=target, error=str(exc))
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.token,
        max_age=signed_in.expires_in,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/console/logout")
async def logout(console: SignedIn) -> Response:
    await console.form()
    token = console.request.cookies.get(SESSION_COOKIE, "")
    console.kp.signin.sign_out(token)
    response = RedirectResponse("/console/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get(SETUP_LINK_PATH + "{token}")
def set_password_form(request: Request, token: str) -> Response:
    kp: Keyplane = request.app.state.keyplane
    if not kp.users.setup_link_is_valid(token):
        return _set_password_page(request, token, 404, expired=True)
    return _set_password_page(request, token)


def _set_password_page(
    request: Request, token: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    response = _pre_session_page(request, "set_password.html", status_code, token=token, **context)
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is a secret
    return response


@router.post(SETUP_LINK_PATH + "{token}")
async def set_password(request: Request, token: str) -> Response:
    kp: Keyplane = request.app.state.keyplane
    form = await _pre_session_form(request)
    password = str(form.get("password", ""))
    if password != str(form.get("confirm", "")):
        return _set_password_page(
            request, token, 422, errors={"confirm": "The two passwords differ."}
        )
    try:
        kp.users.set_password_with_token(token, password)
    except InvalidInput as exc:
        return _set_password_page(request, token, 422, errors=errors_of(exc))
    except NotFound:
        return _set_password_page(request, token, 404, expired=True)
    return RedirectResponse("/console/login?password_set=1", status_code=303)
