"""Saved connections for the API commands: ``keyplane login`` writes a profile (a server URL
and an API key) to a TOML file that only its owner may read.

The file is ``$KEYPLANE_CONFIG``, else ``$XDG_CONFIG_HOME/keyplane/config.toml`` (else
``~/.config/keyplane/config.toml``)::

    [profiles.default]
    url = "https://keyplane.example.com"
    api_key = "kp_live_…"

It holds API keys, so it is written 0600 in a 0700 directory, and a file that others may
read or write, or that another user owns, is refused rather than used, as ssh refuses a
private key others can read: a key that may already have leaked should be replaced, and
a file others may write could send our key to their server.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROFILE = "default"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigError(Exception):
    """The config file cannot be used (unsafe permissions, unreadable, not TOML)."""


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    api_key: str


def config_path() -> Path:
    explicit = os.environ.get("KEYPLANE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "keyplane" / "config.toml"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid profile name {name!r}: use letters, digits, - and _ (at most 64)"
        )
    return name


def load(path: Path) -> dict[str, Profile]:
    """Every profile in the file; none when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        _refuse_unsafe(path, os.fstat(file.fileno()))  # the file opened, not its name
        raw = file.read()
    try:
        document = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    profiles: dict[str, Profile] = {}
    for name, table in document.get("profiles", {}).items():
        url, key = table.get("url"), table.get("api_key")
        if not isinstance(url, str) or not isinstance(key, str):
            raise ConfigError(f"{path}: profile {name!r} needs a url and an api_key (strings)")
        profiles[name] = Profile(name, url, key)
    return profiles


def _refuse_unsafe(path: Path, info: os.stat_result) -> None:
    if os.name != "posix":  # Windows has no mode bits; its ACLs are the user profile's
        return
    if info.st_uid != os.geteuid():
        raise ConfigError(
            f"{path} belongs to another user (uid {info.st_uid}): it holds API keys, so "
            "keyplane reads it only when it is yours. Run `keyplane login` to write your own."
        )
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise ConfigError(
            f"{path} is accessible to other users (mode {mode:04o}): it holds API keys, so "
            f"keyplane refuses to use it. Run `chmod 600 {path}`, and replace the keys in it "
            "if others may have read them."
        )


def save(path: Path, profile: Profile) -> None:
    """Add or replace one profile, keeping the others; the file is replaced atomically."""
    profiles = load(path)
    profiles[check_name(profile.name)] = profile
    _write(path, profiles)


def remove(path: Path, name: str) -> bool:
    """Remove a profile; False if there was none of that name. The last one takes the
    file with it."""
    profiles = load(path)
    if profiles.pop(name, None) is None:
        return False
    if profiles:
        _write(path, profiles)
    else:
        path.unlink()
    return True


def _write(path: Path, profiles: dict[str, Profile]) -> None:
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask
    elif directory == config_path().parent and "KEYPLANE_CONFIG" not in os.environ:
        directory.chmod(0o700)  # keyplane's own directory; never a directory the user named
    lines = [
        "# keyplane profiles, written by `keyplane login`. It holds API keys: keep it 0600.",
    ]
    for profile in profiles.values():
        # json.dumps writes a valid TOML basic string (escapes and \\uXXXX included).
        lines += [
            "",
            f"[profiles.{profile.name}]",
            f"url = {json.dumps(profile.url)}",
            f"api_key = {json.dumps(profile.api_key)}",
        ]
    # Created 0600 from the start (never a moment readable by others), then renamed over
    # the old file, so a crash leaves the old file or the new one, never half of one.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w") as file:
            file.write("\n".join(lines) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)  # mkstemp's mode already; said here for the reader
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
