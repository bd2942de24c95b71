"""Browser fixtures, a pytest plugin that tests/conftest.py loads: Playwright driving
Debian's Chromium against a real keyplane server.

Chromium comes from the distribution (``apt-get install chromium``; .ci/run does it), never
from Playwright's own download. Without it the browser tests skip with the reason, except
under CI=true, where they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from keyplane.domain.models import Role
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import Principal
from keyplane.services.users import NewUser

from conftest import IN_CI, SEEN, CreatedKeys, Org, Server

CHROMIUM = os.environ.get("KEYPLANE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[2] / "build" / "screenshots"
PASSWORD = "correct horse battery staple"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires the browser tests to run")
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@dataclass
class Person:
    email: str
    password: str
    role: Role


@dataclass
class ConsoleSetup:
    """An organization on the SQLite server, and a way to add people to it."""

    server: Server
    org: Org
    created: CreatedKeys

    @property
    def base(self) -> str:
        return self.server.base_url

    def person(self, role: Role) -> Person:
        email = f"{role}-{secrets.token_hex(4)}@example.com"
        owner = Principal(self.org.id, self.org.owner_id, ScopeSet.full())
        self.server.kp.users.create(
            owner, NewUser(email=email, name=role.title(), role=role, password=PASSWORD)
        )
        return Person(email, PASSWORD, role)


@pytest.fixture
def setup(sqlite_server: Server, created_keys: CreatedKeys) -> Iterator[ConsoleSetup]:
    yield ConsoleSetup(sqlite_server, Org(sqlite_server, created_keys), created_keys)
    created_keys.close_clients()


@pytest.fixture
def context(browser: Browser, setup: ConsoleSetup) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=setup.base,
        viewport={"width": 1280, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, person: Person) -> None:
    page.goto("/console/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/keys")
    SEEN.add_password(person.password)  # for the leak search at the end of the session
    for cookie in page.context.cookies():
        if cookie.get("name") == "kp_session":
            SEEN.add_token(cookie.get("value", ""))


def screenshot(page: Page, name: str) -> None:
    """Writes build/screenshots/<name>.png (docs/ keeps the copies the README shows)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
