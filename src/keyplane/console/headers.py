"""Security headers on every console response: pages, redirects, error pages, static files.

A pure-ASGI middleware rather than a line in ``page()``: redirects and responses made by
exception handlers or other middleware never pass through ``page()``, and a header that
only some responses carry protects nothing.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_PREFIX = "/console"

# Scripts and styles come only from /console/static (no inline code, no CDN); forms post
# only to keyplane; nobody may frame the console (clickjacking); no plugins, no <base>.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),  # frame-ancestors for browsers without CSP level 2
    ("referrer-policy", "same-origin"),
)
# Only over HTTPS (RFC 6797 7.2: a host must not send it over plain HTTP). One year, no
# includeSubDomains: keyplane cannot know what else lives under its parent domain.
HSTS = ("strict-transport-security", "max-age=31536000")


class ConsoleHeaders:
    """Adds the console's security headers to responses under ``/console``.

    A header a handler set itself wins (the set-password page narrows the referrer policy
    to ``no-referrer``, as its URL is a secret).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_console(scope["path"]):
            await self.app(scope, receive, send)
            return
        extra = (*HEADERS, HSTS) if scope.get("scheme") == "https" else HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
