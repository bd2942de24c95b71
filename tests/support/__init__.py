"""Helpers shared by the API, CLI and end-to-end tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """Asserts an RFC 9457 problem document with ``status`` naming each of ``fields``."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:keyplane:problem:")
    assert body["title"]
    assert body["detail"]
    named = {error["field"] for error in body.get("errors", [])}
    for field in fields:
        assert field in named, f"{field!r} not named in {body}"
    return body


def eventually(probe: Any, seconds: float = 5.0) -> Any:
    """``probe()`` once it answers something truthy (batched writes land within a second or
    so), else its last answer after ``seconds``: a wait for a state, not a timing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    return probe()
