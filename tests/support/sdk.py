"""The Python SDK (clients/python) against the real test server: an organization of its
own and a client holding its owner's key.

On the SQLite server only: these tests are about the client, and every server backend
answers the same API (tests/api runs on each)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyplane_client import Keyplane

from conftest import CreatedKeys, Org, Server


@pytest.fixture
def sdk_org(sqlite_server: Server, created_keys: CreatedKeys) -> Iterator[Org]:
    yield Org(sqlite_server, created_keys)
    created_keys.close_clients()


@pytest.fixture
def kp(sdk_org: Org) -> Iterator[Keyplane]:
    """A blocking client acting as the organization's owner (full access)."""
    with Keyplane(sdk_org.server.base_url, sdk_org.api.key) as client:
        yield client
