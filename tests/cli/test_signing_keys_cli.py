"""``keyplane signing-keys rotate | list``: the first key made at first start, a rotation
that demotes it to previous (audited in the instance's chain), lists that show only public
facts, and two first starts at once that make one current key, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from keyplane.app import build
from keyplane.cli.main import app
from keyplane.settings import Settings
from keyplane.storage.engine import make_engine
from keyplane.storage.tables import audit_events, signing_keys

from conftest import TEST_SECRET

runner = CliRunner()


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {"KEYPLANE_DATABASE_URL": database_url, "KEYPLANE_SECRET_KEY": TEST_SECRET}


def _json(args: list[str], env: dict[str, str]) -> object:
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_rotate_makes_a_new_current_key_and_keeps_the_old_one_as_previous(
    env: dict[str, str], database_url: str
) -> None:
    first = _json(["signing-keys", "list"], env)
    assert isinstance(first, list)
    assert [k["state"] for k in first] == ["current"]  # made at first start
    rotated = _json(["signing-keys", "rotate"], env)
    assert isinstance(rotated, dict)
    assert rotated["previous"] == first[0]["kid"]
    assert rotated["retired"] == []
    listed = _json(["signing-keys", "list"], env)
    assert isinstance(listed, list)
    assert {k["kid"]: k["state"] for k in listed} == {
        first[0]["kid"]: "previous",
        rotated["current"]: "current",
    }
    assert all(set(k) == {"kid", "algorithm", "state", "created_at", "rotated_at"} for k in listed)

    text = runner.invoke(app, ["signing-keys", "list"], env=env)
    assert text.exit_code == 0
    assert "v1." not in text.output  # no sealed private key, ever
    engine = make_engine(database_url)
    with engine.connect() as conn:
        actions = list(
            conn.scalars(select(audit_events.c.action).where(audit_events.c.org_id == "instance"))
        )
    engine.dispose()
    assert actions == ["signing_key.rotate"]
    verified = runner.invoke(app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output


def test_several_first_starts_at_once_make_one_current_key(database_url: str) -> None:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET)
    build(settings).close()  # migrated once, first: the race is on the key, not the schema
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(signing_keys.delete())
    with ThreadPoolExecutor(4) as pool:
        for kp in list(pool.map(lambda _: build(settings), range(4))):
            kp.close()
    with engine.connect() as conn:
        current = conn.scalar(
            select(func.count()).select_from(signing_keys).where(signing_keys.c.state == "current")
        )
    engine.dispose()
    assert current == 1
