"""The key-hashing secret: a database remembers which one it was created with, secret files
are owner-only, and the generated one appears whole or not at all. Real files, real
databases, real concurrent processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from keyplane.app import build
from keyplane.settings import ConfigurationError, Settings
from keyplane.storage.engine import MIGRATIONS, make_engine

KEYPLANE = str(Path(sys.executable).with_name("keyplane"))
SECRET_A = "first-secret-" + "a" * 40
SECRET_B = "second-secret-" + "b" * 40
MISMATCH = "differs from the one this database was created with"


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env.update(values)
    return env


def test_a_start_with_another_secret_is_refused_and_the_original_still_works(
    database_url: str,
) -> None:
    kp = build(Settings(database_url=database_url, secret_key=SECRET_A))
    made = kp.orgs.create("Acme", "ops@acme.io")
    kp.close()

    with pytest.raises(ConfigurationError) as refused:
        build(Settings(database_url=database_url, secret_key=SECRET_B))
    message = str(refused.value)
    assert MISMATCH in message
    assert "KEYPLANE_SECRET_KEY" in message
    assert SECRET_B not in message
    assert SECRET_A not in message

    again = build(Settings(database_url=database_url, secret_key=SECRET_A))
    try:
        assert again.verifier.verify(made.org.id, made.api_key).code == "VALID"
    finally:
        again.close()


def test_the_cli_exits_2_naming_the_secret_when_it_differs(database_url: str) -> None:
    def migrate(secret: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEYPLANE, "migrate", "--database-url", database_url],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(KEYPLANE_SECRET_KEY=secret),
            check=False,
        )

    assert migrate(SECRET_A).returncode == 0
    refused = migrate(SECRET_B)
    assert refused.returncode == 2
    assert MISMATCH in refused.stderr
    assert "KEYPLANE_SECRET_KEY" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_losing_the_generated_secret_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    database = tmp_path / "keyplane.db"
    settings = Settings(database_url=f"sqlite:///{database}")
    build(settings).close()
    secret_file = tmp_path / "keyplane.db.secret"
    secret_file.unlink()
    with pytest.raises(ConfigurationError) as refused:
        build(settings)
    assert MISMATCH in str(refused.value)
    assert f"the generated file {secret_file}" in str(refused.value)


def test_a_database_from_the_previous_release_adopts_the_secret_it_starts_with(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")  # the previous release's schema
    engine.dispose()
    build(Settings(database_url=url, secret_key=SECRET_A)).close()
    with pytest.raises(ConfigurationError, match=MISMATCH):
        build(Settings(database_url=url, secret_key=SECRET_B))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620, 0o602])
def test_a_secret_file_open_to_group_or_others_is_refused_with_chmod_600(
    tmp_path: Path, mode: int
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET_A)
    secret_file.chmod(mode)
    with pytest.raises(ConfigurationError) as refused:
        Settings(secret_key_file=secret_file).pepper()
    assert f"chmod 600 {secret_file}" in str(refused.value)

    generated = tmp_path / "keyplane.db.secret"
    generated.write_text(SECRET_A)
    generated.chmod(mode)
    with pytest.raises(ConfigurationError) as refused:
        Settings(database_url=f"sqlite:///{tmp_path / 'keyplane.db'}").pepper()
    assert f"chmod 600 {generated}" in str(refused.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_secret_file_is_used(tmp_path: Path, mode: int) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET_A + "\n")
    secret_file.chmod(mode)
    assert Settings(secret_key_file=secret_file).pepper() == SECRET_A.encode()


# Says it is ready, then waits for the start signal: every process reaches the creation at
# the same moment.
_FIRST_START = """
import hashlib, os, sys, time
from keyplane.settings import Settings
open(os.path.join(sys.argv[3], str(os.getpid())), "w").close()
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
pepper = Settings(database_url="sqlite:///" + sys.argv[1]).pepper()
print(hashlib.sha256(pepper).hexdigest())
"""


def test_concurrent_first_starts_all_use_one_complete_generated_secret(tmp_path: Path) -> None:
    home = tmp_path / "db"
    home.mkdir()
    database = home / "keyplane.db"
    secret_file = home / "keyplane.db.secret"
    go, ready = tmp_path / "go", tmp_path / "ready"
    ready.mkdir()
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_START, str(database), str(go), str(ready)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(8)
    ]
    seen: list[bytes] = []
    stop = threading.Event()

    def watch() -> None:  # a reader that must never see the file half-written
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen.append(secret_file.read_bytes())

    watcher = threading.Thread(target=watch)
    watcher.start()
    deadline = time.monotonic() + 120
    while len(list(ready.iterdir())) < len(starts):
        assert all(proc.poll() is None for proc in starts), "a start died before the signal"
        assert time.monotonic() < deadline, "the starts never became ready"
        time.sleep(0.01)
    go.touch()
    outputs = [proc.communicate(timeout=60) for proc in starts]
    stop.set()
    watcher.join()

    assert [proc.returncode for proc in starts] == [0] * 8, outputs
    final = secret_file.read_bytes()
    assert len(final.strip()) >= 32
    assert {out.strip() for out, _ in outputs} == {hashlib.sha256(final.strip()).hexdigest()}
    assert all(content == final for content in seen)
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in home.iterdir()] == ["keyplane.db.secret"]  # no temporary left


_CREATE_FOREVER = """
import sys
from pathlib import Path
from keyplane.settings import Settings
directory = Path(sys.argv[1])
n = 0
while True:
    Settings(database_url=f"sqlite:///{directory / str(n)}.db").pepper()
    n += 1
"""


def test_a_crash_during_creation_never_leaves_an_empty_or_partial_secret(
    tmp_path: Path,
) -> None:
    for round_ in range(5):
        directory = tmp_path / str(round_)
        directory.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-c", _CREATE_FOREVER, str(directory)],
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        deadline = time.monotonic() + 30
        while len(list(directory.glob("*.secret"))) < 5 + round_ * 7:
            assert proc.poll() is None, "the creating process died on its own"
            assert time.monotonic() < deadline, "no secrets were created"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        secrets = list(directory.glob("*.secret"))
        assert secrets
        for path in secrets:
            assert len(path.read_bytes().strip()) >= 32, path
            assert Settings(secret_key_file=path).pepper() == path.read_bytes().strip()
