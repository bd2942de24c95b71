"""Route tables: the scopes a request through a gateway needs (``GET /v1/auth/nginx``).

An organization's route table is an ordered list of rules ``{method, path, scopes}``. A
request is judged by the first rule whose method and path match it; a request that no rule
matches is denied (deny by default: a path nobody thought of is never open).

Grammar of ``path`` (matched against the decoded request path, case-sensitive, without
the query string):

- it starts with ``/``; segments are separated by ``/``;
- ``*`` inside a segment matches one or more characters other than ``/``: ``/models/*``
  matches ``/models/a`` but neither ``/models/`` nor ``/models/a/b``; ``/v*/models``
  matches ``/v1/models``;
- ``**`` as a whole segment matches one or more segments, and a trailing slash:
  ``/models/**`` matches ``/models/a``, ``/models/a/b`` and ``/models/a/``, not ``/models``
  nor ``/models/`` (give those their own rule);
- everything else is literal; a trailing slash is significant (``/models`` and
  ``/models/`` are two paths).

``method`` is an HTTP method (upper case) or ``*`` for any; ``HEAD`` is its own method (a
``GET`` rule does not cover it). ``scopes`` are all required (``[]``: any valid key).

Request paths that servers may read differently are refused before any rule is tried
(``normalised_path`` answers None), because the gateway passes the path on as the client
sent it and the upstream decodes it itself: if keyplane resolved ``/public/../admin`` to
``/admin`` while the upstream routed it as a ``/public/{rest}`` parameter, or the reverse,
a rule could be walked around. Refused: ``.`` and ``..`` segments (also encoded, ``%2e``),
empty segments (``//``), an encoded ``/``, ``\\`` or ``%`` (``%2F``, ``%5C``, ``%25``: double
encoding), a raw ``\\``, control characters, malformed percent-escapes, bytes that are not
UTF-8, and anything not starting with ``/``. Other percent-escapes are decoded once
(``/models/%41`` is ``/models/A``), as every server does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import FieldError, InvalidInput

METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
ROUTES_MAX: Final = 200
ROUTE_PATH_MAX: Final = 512
# Longer request paths are refused rather than matched (nginx's default header buffer is 8k).
REQUEST_PATH_MAX: Final = 4096

_FIELDS: Final = frozenset(("method", "path", "scopes"))
# What a pattern's literal text may hold: printable, no whitespace, nothing that a request
# path could only carry encoded or that normalised_path refuses.
_PATTERN_CHARS: Final = re.compile(r"[^\x00-\x20\x7f?#%\\]+")
_PERCENT: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_REFUSED_ESCAPES: Final = re.compile(rb"%(?:2[fF5]|5[cC])")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    scopes: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "scopes": list(self.scopes)}


def route_table_json(routes: Sequence[Route]) -> list[dict[str, Any]]:
    return [route.as_json() for route in routes]


def route_table_of(stored: Any) -> tuple[Route, ...]:
    """The rules as stored (checked when they were saved)."""
    return tuple(
        Route(item["method"], item["path"], tuple(item["scopes"])) for item in stored or ()
    )


def check_route_table(field: str, value: Any, catalogue: Catalogue) -> tuple[Route, ...]:
    """``[{"method", "path", "scopes"}, …]`` as Routes (in order), or InvalidInput naming
    each bad entry (``route_table[2].path``)."""
    if not isinstance(value, list | tuple):
        raise InvalidInput.field(field, "must be a list of rules")
    if len(value) > ROUTES_MAX:
        raise InvalidInput.field(field, f"must have at most {ROUTES_MAX} rules")
    errors: list[FieldError] = []
    routes: list[Route] = []
    seen: dict[tuple[str, str], int] = {}
    for index, given in enumerate(value):
        at = f"{field}[{index}]"
        item = given.as_json() if isinstance(given, Route) else given
        if not isinstance(item, dict):
            errors.append(FieldError(at, "must be an object"))
            continue
        errors.extend(
            FieldError(f"{at}.{name}", "is not a field of a rule")
            for name in sorted(set(item) - _FIELDS)
        )
        method = _method(item.get("method"), f"{at}.method", errors)
        path = _pattern(item.get("path"), f"{at}.path", errors)
        scopes = _scopes(item.get("scopes"), f"{at}.scopes", catalogue, errors)
        if method is None or path is None or scopes is None:
            continue
        earlier = seen.setdefault((method, path), index)
        if earlier != index:
            errors.append(FieldError(f"{at}.path", f"duplicates rule {earlier}: it never applies"))
        routes.append(Route(method, path, scopes))
    if errors:
        raise InvalidInput(*errors)
    return tuple(routes)


def _method(value: Any, at: str, errors: list[FieldError]) -> str | None:
    method = value.upper() if isinstance(value, str) else None
    if method == "*" or method in METHODS:
        return method
    errors.append(FieldError(at, f"must be one of {', '.join(METHODS)}, or * for any"))
    return None


def _pattern(value: Any, at: str, errors: list[FieldError]) -> str | None:
    problem = _pattern_problem(value)
    if problem is None:
        return str(value)
    errors.append(FieldError(at, problem))
    return None


def _pattern_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith("/"):
        return "must be a path starting with /"
    if len(value) > ROUTE_PATH_MAX:
        return f"must be at most {ROUTE_PATH_MAX} characters"
    if value != "/" and not _PATTERN_CHARS.fullmatch(value):
        return (
            "must not contain spaces, control characters, ?, #, % or \\ (write the path "
            "decoded; the query string is never matched)"
        )
    segments = value[1:].split("/")
    for position, segment in enumerate(segments):
        problem = _segment_problem(segment, last=position == len(segments) - 1)
        if problem is not None:
            return problem
    return None


def _segment_problem(segment: str, *, last: bool) -> str | None:
    if segment == "" and not last:
        return "must not contain empty segments (//)"
    if segment in (".", ".."):
        return "must not contain . or .. segments"
    if "**" in segment and segment != "**":
        return "** must be a whole segment (/a/**); * matches within a segment"
    return None


def _scopes(
    value: Any, at: str, catalogue: Catalogue, errors: list[FieldError]
) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) for s in value):
        errors.append(FieldError(at, "must be a list of scopes ([] for any valid key)"))
        return None
    try:
        catalogue.validate(at, list(value))
    except InvalidInput as exc:
        errors.extend(exc.errors)
        return None
    return tuple(dict.fromkeys(value))  # in the order given, once each


_SEGMENTS: Final = r"[^/]+(?:/[^/]+)*"


def _segment_regex(segment: str) -> str:
    if segment == "**":
        return _SEGMENTS
    return "[^/]+".join(re.escape(part) for part in segment.split("*"))


def _path_regex(path: str) -> str:
    if path == "/":
        return "/"
    regex = "/" + "/".join(_segment_regex(segment) for segment in path[1:].split("/"))
    # A final ** also takes a trailing slash: /models/** matches /models/a/.
    return regex + "/?" if path.endswith("/**") else regex


class RouteTable:
    """A route table compiled to one regular expression over ``"METHOD path"``.

    Alternatives are tried in order and only the first match counts; each rule is one
    capturing group (everything inside is non-capturing), so the match's ``lastindex`` is
    the rule's number. One ``fullmatch`` per request, whatever the table's size."""

    __slots__ = ("_regex", "_scopes", "routes")

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._scopes = tuple(route.scopes for route in self.routes)
        alternatives = [
            "({} {})".format(
                "[^ ]+" if route.method == "*" else re.escape(route.method),
                _path_regex(route.path),
            )
            for route in self.routes
        ]
        self._regex = re.compile("|".join(alternatives)) if alternatives else None

    def required(self, method: str, path: str) -> tuple[str, ...] | None:
        """The scopes the first matching rule requires, or None when no rule matches
        (``path``: what ``normalised_path`` made of the request)."""
        if self._regex is None or " " in method:
            return None
        found = self._regex.fullmatch(f"{method} {path}")
        if found is None or found.lastindex is None:
            return None
        return self._scopes[found.lastindex - 1]


EMPTY: Final = RouteTable(())


@functools.lru_cache(maxsize=1024)
def compiled(routes: tuple[Route, ...]) -> RouteTable:
    """The compiled table, shared by every key record of an organization (and by every
    organization with the same rules): compiled once per version of the table."""
    return RouteTable(routes) if routes else EMPTY


def normalised_path(uri: str) -> str | None:
    """The decoded path of a request URI as the client sent it (``$request_uri``: query
    string and all), or None when servers could read it differently (module docstring)."""
    decoded = _decoded(uri.partition("?")[0])
    if decoded is None or _CONTROL.search(decoded):
        return None
    segments = decoded[1:].split("/")
    if "." in segments or ".." in segments or "" in segments[:-1]:
        return None
    return decoded


def _decoded(path: str) -> str | None:
    """``path`` percent-decoded once, or None: not a path, too long, a malformed or refused
    escape, bytes that are not UTF-8."""
    if not path.startswith("/") or len(path) > REQUEST_PATH_MAX:
        return None
    try:
        raw = path.encode("latin-1")  # headers arrive as latin-1 text: the bytes as sent
        if _PERCENT.search(raw) or _REFUSED_ESCAPES.search(raw):
            return None
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeError:  # a character no header carries; bytes that are not UTF-8
        return None
