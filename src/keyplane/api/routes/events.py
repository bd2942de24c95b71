"""GET /v1/events/stream: invalidation notices as Server-Sent Events (services/events.py).

For clients that cache verdicts, such as the SDK's guard: a notice names a key, app,
profile or organization of the caller's organization that changed, and the client drops
what it cached about it. Only ids, never a secret or a digest.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from keyplane.api.deps import KeysVerify, Services
from keyplane.api.routes._docs import problems
from keyplane.services.common import Principal
from keyplane.services.events import Event, InvalidationEvents

router = APIRouter(prefix="/v1/events", tags=["events"])

MEDIA_TYPE: Final = "text/event-stream"
RETRY_MS: Final = 2000  # how long an EventSource waits before it reconnects
_HEARTBEAT: Final = b": keep-alive\n\n"
_EVENT_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "`<epoch>-<sequence>`: send as Last-Event-ID."},
        "event": {"type": "string", "enum": ["invalidate", "reset", "ready"]},
        "data": {
            "type": "string",
            "description": 'JSON: `{"kind", "id"}` (invalidate), `{"reason"}` (reset), `{}`.',
        },
    },
    "required": ["id", "event", "data"],
}

_DESCRIPTION = """\
Server-Sent Events, one per line group (`id:`, `event:`, `data:`):

* `invalidate`, `data: {"kind": "key"|"app"|"profile"|"org", "id": "…"}`: something a
  cached verdict depends on changed (on any keyplane node): forget what names that id
  (for `org`, everything);
* `reset`, `data: {"reason": "…"}`: drop every cached verdict (the stream could not be
  resumed from `Last-Event-ID`, this node may have missed notices, or the client fell
  too far behind, in which case the stream then ends);
* `ready`, `data: {}`: what was missed since `Last-Event-ID` has been sent; its `id` is
  the client's position.

Reconnect with the last `id` seen in `Last-Event-ID`: ids hold the node's epoch and are
meaningful only to the node that gave them (any other answers `reset`). A comment line
comes after each 15 s of silence. The server ends a stream after 10 minutes, and at once
when the caller's own key or organization changes, so that the reconnection checks the
key again.
"""


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        **problems(),
        200: {
            "description": "The stream of invalidation notices.",
            # One event of the stream (its fields as sent; `data` is JSON text).
            "content": {MEDIA_TYPE: {"schema": _EVENT_SCHEMA}},
        },
    },
    summary="Stream invalidation notices",
    description=_DESCRIPTION,
)
async def stream_events(
    principal: KeysVerify,
    kp: Services,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=64,
            description="The last event id received, to resume after it.",
        ),
    ] = None,
) -> StreamingResponse:
    settings = kp.settings
    return StreamingResponse(
        _frames(
            kp.events,
            principal.org_id,
            last_event_id,
            _own(principal),
            settings.events_heartbeat_seconds,
            settings.events_stream_max_seconds,
        ),
        media_type=MEDIA_TYPE,
        # No proxy or browser keeps it; nginx does not buffer it (X-Accel-Buffering).
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _own(principal: Principal) -> frozenset[tuple[str, str]]:
    """Notices after which the caller's own key must be checked again."""
    return frozenset({("key", principal.actor_id), ("org", principal.org_id)})


async def _frames(
    hub: InvalidationEvents,
    org_id: str,
    last_event_id: str | None,
    own: frozenset[tuple[str, str]],
    heartbeat: float,
    lifetime: float,
) -> AsyncIterator[bytes]:
    # Subscribed here, once the response streams (a response that never starts leaves no
    # subscriber behind), and unsubscribed however the stream ends: its end, the client
    # leaving (Starlette cancels this generator), or the server shutting down.
    subscription, first = hub.subscribe(org_id, last_event_id)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        batch: list[Event] | None = first
        ends_at = time.monotonic() + lifetime
        while True:
            if batch is None:  # fell behind: everything it holds may be stale
                yield _frame(hub, hub.reset_here(subscription.org_id, "slow-subscriber"))
                return
            chunk = b"".join(_frame(hub, event) for event in batch)
            if chunk:
                yield chunk
            if any((e.kind, e.ident) in own for e in batch):
                return
            remaining = ends_at - time.monotonic()
            if remaining <= 0:
                return
            batch = await subscription.next(min(heartbeat, remaining))
            if batch == []:
                yield _HEARTBEAT
    finally:
        subscription.close()


def _frame(hub: InvalidationEvents, event: Event) -> bytes:
    if event.name == "invalidate":
        data = orjson.dumps({"kind": event.kind, "id": event.ident})
    elif event.name == "reset":
        data = orjson.dumps({"reason": event.reason})
    else:
        data = b"{}"
    ident = hub.event_id(event.seq).encode()
    return b"id: " + ident + b"\nevent: " + event.name.encode() + b"\ndata: " + data + b"\n\n"
