"""A Server-Sent Events reader for the tests of ``GET /v1/events/stream``: real HTTP over
loopback, one event at a time, with the raw text kept for the searches for secrets."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Sse:
    id: str | None
    event: str
    data: dict[str, Any]


class EventStream:
    """``GET /v1/events/stream`` as ``key``, optionally resuming after ``last_event_id``."""

    def __init__(self, base_url: str, key: str, last_event_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        # A read timeout a little longer than the promise: waiting past it is a failure.
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=3))
        self._context = self._client.stream("GET", "/v1/events/stream", headers=headers)
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()
        self.raw: list[str] = []
        self.last_id: str | None = None

    def next(self) -> Sse | None:
        """The next event (comments skipped); None when the server ended the stream."""
        fields: dict[str, str] = {}
        for line in self._lines:
            self.raw.append(line)
            if line == "":
                if "event" in fields or "data" in fields:
                    event = Sse(
                        fields.get("id"),
                        fields.get("event", "message"),
                        json.loads(fields.get("data", "{}")),
                    )
                    if event.id is not None:
                        self.last_id = event.id
                    return event
                fields.clear()
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        return None

    def until(self, event: str, within: float = 1.0) -> tuple[Sse, float]:
        """The next ``event`` (skipping others) and the seconds it took; fails past ``within``."""
        started = time.monotonic()
        while True:
            found = self.next()
            assert found is not None, "the stream ended"
            took = time.monotonic() - started
            assert took <= within, f"{event} came after {took:.2f} s"
            if found.event == event:
                return found, took

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
