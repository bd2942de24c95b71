"""Exceptions: keyplane's problem documents (RFC 9457) as typed errors.

```
KeyplaneError
├── APIConnectionError            no answer: refused, reset, DNS, TLS
│   └── APITimeoutError
├── UnexpectedResponseError       a 2xx whose body is not what the API documents
└── APIError                      an answer with a 4xx/5xx status (a problem document)
    ├── BadRequestError           400
    ├── AuthenticationError       401  missing, unknown, disabled or expired key
    ├── PermissionDeniedError     403  a scope missing, or more granted than held
    ├── NotFoundError             404  nothing of that id in your organization
    ├── ConflictError             409
    ├── ValidationError           422  .errors names each bad field
    ├── RateLimitedError          429  .retry_after in seconds, when the server said
    ├── InternalServerError       500 and other 5xx
    └── ServiceUnavailableError   503
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field of a request: ``field`` as the server names it (``scopes[1]``)."""

    field: str
    message: str


class KeyplaneError(Exception):
    """Everything this library raises about talking to keyplane."""


class APIConnectionError(KeyplaneError):
    """No HTTP answer: the connection failed, was reset, or a name did not resolve."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""


class UnexpectedResponseError(KeyplaneError):
    """A success status whose body is not what the API documents (not JSON, or missing a
    field): a proxy answering for keyplane, or a server older than this client."""

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


class APIError(KeyplaneError):
    """keyplane answered with an error status, described by a problem document.

    ``body`` is the whole document (extra members such as ``missing_scope`` or ``code``
    included); an answer that was not a problem document (a proxy's HTML page) leaves
    ``type`` as ``about:blank`` and ``detail`` as the start of the text."""

    status: int

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        type: str = "about:blank",
        errors: list[FieldError] | None = None,
        *,
        body: dict[str, Any] | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = list(errors or [])
        self.body = dict(body or {})
        self.headers = headers if headers is not None else httpx.Headers()
        text = f"{status} {title}"
        if detail:
            text += f": {detail}"
        for error in self.errors:
            text += f"\n  {error.field}: {error.message}"
        super().__init__(text)


class BadRequestError(APIError):
    """400: malformed JSON, or a key put in a URL."""


class AuthenticationError(APIError):
    """401: the API key is missing, malformed, unknown, disabled or expired."""


class PermissionDeniedError(APIError):
    """403: the key lacks a scope (``missing_scope``), tried to grant more than it holds,
    or called from an address outside its allowlist."""

    @property
    def missing_scope(self) -> str | None:
        value = self.body.get("missing_scope")
        return value if isinstance(value, str) else None


class NotFoundError(APIError):
    """404: no such object in the caller's organization."""


class ConflictError(APIError):
    """409: a name taken, an object in use, a key already rotated."""


class ValidationError(APIError):
    """422: invalid input; ``errors`` names each field and why."""


class RateLimitedError(APIError):
    """429: the calling key is over a rate limit, or out of quota (``code`` is
    ``USAGE_EXCEEDED``). ``retry_after`` is the server's ``Retry-After`` in seconds."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers)

    @property
    def code(self) -> str | None:
        value = self.body.get("code")
        return value if isinstance(value, str) else None


class InternalServerError(APIError):
    """5xx other than 503."""


class ServiceUnavailableError(APIError):
    """503: the server could not complete the request (nothing changed); retry later."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers)


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``Retry-After`` as seconds, or None. keyplane sends delta-seconds; an HTTP date
    (which a proxy might send) is not honoured and counts as absent."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(response: httpx.Response) -> APIError:
    """The typed error for an error answer, read from its problem document if it has one."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        body = parsed
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIError)
    title = body.get("title")
    detail = body.get("detail")
    kind = body.get("type")
    return cls(
        status,
        title if isinstance(title, str) else response.reason_phrase or f"HTTP {status}",
        detail if isinstance(detail, str) else ("" if body else response.text[:200]),
        kind if isinstance(kind, str) else "about:blank",
        _field_errors(body.get("errors")),
        body=body,
        headers=response.headers,
    )


def _field_errors(raw: object) -> list[FieldError]:
    if not isinstance(raw, list):
        return []
    return [
        FieldError(str(item.get("field", "")), str(item.get("message", "")))
        for item in raw
        if isinstance(item, dict)
    ]
