"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable) and a real
keyplane server on loopback, driven with httpx.

PostgreSQL tests skip with a reason when no server answers at KEYPLANE_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/test), except under CI=true, where a missing
PostgreSQL fails the run instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import uvicorn
from sqlalchemy.engine import make_url

from keyplane.app import build, create_app
from keyplane.container import Keyplane
from keyplane.domain.tokens import parse_key
from keyplane.logs import disable_access_log
from keyplane.services.keys import IssuedKey
from keyplane.settings import Settings

pytest_plugins = [
    "support.browser",
    "support.databases",
    "support.receiver",
    "support.remote_cli",
    "support.sdk",
]

POSTGRES_ADMIN_URL = os.environ.get(
    "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_SECRET = "test-pepper-" + "x" * 40
SET_PASSWORD_PATH = "/console/set-password/"


class Clock:
    """A clock tests can move forward; the server under test reads it."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta


class LogCapture(logging.Handler):
    """Every log record of the session, formatted, as the leak test reads them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class CreatedKeys:
    """Every secret any test saw, for the search of the databases and logs at the end: full
    keys, passwords, console session tokens, set-password tokens and webhook signing
    secrets."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.passwords: set[str] = set()
        self.tokens: set[str] = set()
        self.webhook_secrets: set[str] = set()
        self.clients: list[httpx.Client] = []

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def add(self, key: str) -> None:
        if parse_key(key) is not None:  # garbage presented on purpose is no secret
            self.keys.add(key)

    def add_password(self, password: str) -> None:
        # Shorter ones are refused before anything is stored, and a password of a few
        # repeated characters ("x" * 20) is also a name in the length tests: no needle.
        if len(password) >= 12 and len(set(password)) >= 6:
            self.passwords.add(password)

    def add_token(self, token: str) -> None:
        if len(token) >= 20:
            self.tokens.add(token)

    def add_webhook_secret(self, secret: str) -> None:
        if secret.startswith("whsec_") and len(secret) > 30:
            self.webhook_secrets.add(secret)

    def note_form(self, form: Mapping[str, object]) -> None:
        """The passwords a console form or a JSON body carries."""
        for field in ("password", "confirm"):
            value = form.get(field)
            if isinstance(value, str):
                self.add_password(value)

    def note_set_password_link(self, link: str) -> None:
        if SET_PASSWORD_PATH in link:
            self.add_token(link.rsplit("/", 1)[-1])


@pytest.fixture(scope="session")
def log_capture() -> Iterator[LogCapture]:
    handler = LogCapture()
    disable_access_log()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    for noisy in ("sqlalchemy", "alembic", "hpack", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The tests' own HTTP client logs each URL it requests, including the ones that put a
    # key in a query string on purpose to see the server refuse it: that is the client's
    # log, not keyplane's, so it stays out of the search.
    for client in ("httpx", "httpcore"):
        logging.getLogger(client).setLevel(logging.WARNING)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


# One registry for the session, also for helpers that no fixture reaches (support.browser).
SEEN = CreatedKeys()


@pytest.fixture(scope="session")
def created_keys() -> CreatedKeys:
    return SEEN


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this session, dropped afterwards."""
    problem = _postgres_reachable()
    if problem is not None:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {problem}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true requires PostgreSQL)")
        pytest.skip(message)
    name = f"keyplane_test_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


REDIS_URL = os.environ.get("KEYPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's shared Redis. Tests use it only under their own key prefix
    (``redis_prefix``) and never stop or flush it; one that must break Redis starts its own
    (``own_redis``)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true requires Redis)")
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own in the shared Redis, its keys deleted afterwards."""
    prefix = f"kptest:{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class OwnRedis:
    """A redis-server of the test's own on a free port (nothing on disk), to stop at will."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung Redis)."""
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI=true requires it)")
        pytest.skip("redis-server is not installed")
    server = OwnRedis(binary)
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A keyplane app served by uvicorn in a thread, over real loopback HTTP."""

    def __init__(
        self, kp: Keyplane, clock: Clock, database_url: str, sqlite_file: Path | None
    ) -> None:
        self.kp = kp
        self.clock = clock
        self.database_url = database_url
        self.sqlite_file = sqlite_file
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(keyplane=kp),
            host="127.0.0.1",
            port=self.port,
            access_log=False,
            log_config=None,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="keyplane-test-server", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def _start_server(database_url: str, sqlite_file: Path | None, **more: Any) -> Server:
    clock = Clock()
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET if sqlite_file is None else None,
        usage_flush_interval=0.05,
        # The shared servers' tests keep expired keys and queued deliveries to look at; the
        # job tests run jobs themselves (kp.jobs.run_once) with the injected clock.
        run_jobs=False,
        **more,
    )
    kp = build(settings, clock=clock)
    _record_issued_keys(kp, SEEN)
    server = Server(kp, clock, database_url, sqlite_file)
    server.start()
    return server


def _record_issued_keys(kp: Keyplane, seen: CreatedKeys) -> None:
    """Every key the server issues joins the leak search, whichever path issued it (API,
    console form, organization bootstrap), also when no test ever reads it from a page.

    An observer around the one method every issuing path goes through; it changes nothing.
    """
    issue = kp.keys.issue_in

    def issue_and_record(*args: Any, **kwargs: Any) -> IssuedKey:
        issued = issue(*args, **kwargs)
        seen.add(issued.secret)
        return issued

    kp.keys.issue_in = issue_and_record  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def sqlite_server(
    tmp_path_factory: pytest.TempPathFactory, log_capture: LogCapture
) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("sqlite") / "keyplane.db"
    server = _start_server(f"sqlite:///{path}", path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(postgres_url: str, log_capture: LogCapture) -> Iterator[Server]:
    server = _start_server(postgres_url, None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(postgres_url: str, redis_url: str, log_capture: LogCapture) -> Iterator[Server]:
    """Limits in Redis, as several nodes run them: PostgreSQL and the shared Redis (under a
    prefix of its own). Tests of limits run on it too (``limits_server``)."""
    prefix = f"kptest:{secrets.token_hex(6)}:"
    server = _start_server(postgres_url, None, redis_url=redis_url, redis_prefix=prefix)
    yield server
    server.stop()
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest) -> Server:
    """The server under test, once per backend."""
    fixture = "sqlite_server" if request.param == "sqlite" else "postgres_server"
    result: Server = request.getfixturevalue(fixture)
    return result


class Api:
    """An httpx client for one caller, remembering every full key it is shown."""

    def __init__(self, server: Server, key: str, created: CreatedKeys) -> None:
        self.server = server
        self.key = key
        self._created = created
        created.add(key)
        self.http = httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key}"},
            event_hooks={"request": [self._note], "response": [self._remember]},
            timeout=15,
        )
        created.clients.append(self.http)

    def _note(self, request: httpx.Request) -> None:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = json.loads(request.content)
            except (ValueError, RecursionError, httpx.RequestNotRead):  # hostile on purpose
                return
            if isinstance(body, dict):
                self._created.note_form(body)

    def _remember(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return  # a stream never ends, and carries no secret (test_events_stream.py)
        response.read()
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type == "application/json":
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("key"), str):
                self._created.add(body["key"])
            if isinstance(body, dict) and isinstance(body.get("secret"), str):
                self._created.add_webhook_secret(body["secret"])
            if isinstance(body, dict) and isinstance(body.get("set_password_url"), str):
                self._created.note_set_password_link(body["set_password_url"])

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self.http.get(url, **kwargs)  # type: ignore[arg-type]

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        return self.http.post(url, **kwargs)  # type: ignore[arg-type]

    def patch(self, url: str, **kwargs: object) -> httpx.Response:
        return self.http.patch(url, **kwargs)  # type: ignore[arg-type]

    def delete(self, url: str, **kwargs: object) -> httpx.Response:
        return self.http.delete(url, **kwargs)  # type: ignore[arg-type]

    def create_key(self, **body: object) -> dict[str, object]:
        body.setdefault("name", "test key")
        response = self.post("/v1/keys", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, object] = response.json()
        return created

    def as_key(self, key: str) -> Api:
        return Api(self.server, key, self._created)

    def verify(self, key: str, scopes: list[str] | None = None) -> dict[str, object]:
        response = self.post("/v1/keys/verify", json={"key": key, "scopes": scopes or []})
        assert response.status_code == 200, response.text
        verdict: dict[str, object] = response.json()
        return verdict


class Org:
    def __init__(self, server: Server, created: CreatedKeys) -> None:
        suffix = secrets.token_hex(4)
        made = server.kp.orgs.create(f"Test org {suffix}", f"owner-{suffix}@example.com")
        self.id = made.org.id
        self.owner_id = made.owner.id
        self.owner_key_id = made.key_id
        self.api = Api(server, made.api_key, created)
        self.server = server

    def key_with(self, *scopes: str, **body: object) -> Api:
        """A client authenticated by a new key of this org holding ``scopes``."""
        created = self.api.create_key(scopes=list(scopes), **body)
        return self.api.as_key(str(created["key"]))


@pytest.fixture
def org(server: Server, created_keys: CreatedKeys) -> Iterator[Org]:
    """A fresh organization on the server under test; ``org.api`` holds its owner's key."""
    yield Org(server, created_keys)
    created_keys.close_clients()


@pytest.fixture
def other_org(server: Server, created_keys: CreatedKeys) -> Iterator[Org]:
    """A second organization, for isolation tests."""
    yield Org(server, created_keys)
    created_keys.close_clients()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``runs_last`` run after everything else (they inspect the whole run)."""
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)
