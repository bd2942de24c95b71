"""What the resource namespaces share: a request described once (:class:`Call`), for the
synchronous and the asynchronous client alike, and the marker for "not given"."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol, TypeAlias, TypeVar
from urllib.parse import quote

from pydantic import BaseModel


class NotGiven(enum.Enum):
    """A parameter left out, as opposed to one given as None (which sends ``null``:
    ``keys.update(key_id, expires_at=None)`` removes the expiry)."""

    NOT_GIVEN = enum.auto()

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False


NOT_GIVEN: Final = NotGiven.NOT_GIVEN

# The methods whose repetition changes nothing more than the first call did (RFC 9110
# 9.2.2). PATCH is not among them: {"quota": {"add": 500}} adds again.
IDEMPOTENT_METHODS: Final = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE"))

Params: TypeAlias = Mapping[str, str | int | None]


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request to keyplane's API, before any retry."""

    method: str
    path: str
    params: Params = field(default_factory=dict)
    json: Any = None
    # None: decided by the method. True marks a POST that is safe to send twice (a
    # verification that spends nothing).
    idempotent: bool | None = None

    @property
    def safe_to_resend(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS

    def query(self) -> dict[str, str | int]:
        return {k: v for k, v in self.params.items() if v is not None}


def path(template: str, *ids: str) -> str:
    """``template`` with each ``{}`` filled by an id, escaped so that an id can never
    reach another route (``../keys``, ``a/b``, ``?x``)."""
    return template.format(*(quote(i, safe="") for i in ids))


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body of the fields given (NOT_GIVEN left out), datetimes as RFC 3339."""
    return {name: _json(value) for name, value in fields.items() if value is not NOT_GIVEN}


def moment(value: datetime | str | None) -> str | None:
    """A time for a query string: RFC 3339 (give it a zone; keyplane refuses naive times)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


M = TypeVar("M", bound=BaseModel)


class SyncAPI(Protocol):
    """What a namespace of :class:`keyplane_client.Keyplane` calls."""

    def _request(self, model: type[M], call: Call) -> M: ...

    def _request_empty(self, call: Call) -> None: ...

    def _stream(self, call: Call) -> Iterator[bytes]: ...


class AsyncAPI(Protocol):
    """What a namespace of :class:`keyplane_client.AsyncKeyplane` awaits."""

    async def _request(self, model: type[M], call: Call) -> M: ...

    async def _request_empty(self, call: Call) -> None: ...

    def _stream(self, call: Call) -> AsyncIterator[bytes]: ...
