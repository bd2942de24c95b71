"""Finding leaked keyplane keys in files, in standard input and in git history.

The recognising is pure (``keyplane.domain.leaks``); this module reads: it walks
directories, skips what is not text, and runs ``git log -p`` for the history. Problems
with one file (unreadable, too large) are reported through ``warn`` and the scan goes on;
only a scan that cannot start raises ``ScanError``.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess  # nosec B404: runs the git CLI with fixed arguments, never a shell
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from keyplane.domain.leaks import FoundKey, find_keys
from keyplane.domain.tokens import PREFIX, Environment

MAX_FILE_BYTES: Final = 10 * 1024 * 1024
SNIFF_BYTES: Final = 8192  # a NUL byte in the first 8 KiB marks a binary file, as git decides
STDIN: Final = "-"
STDIN_NAME: Final = "<stdin>"

Warn = Callable[[str], None]


class ScanError(Exception):
    """The scan cannot start: a path that does not exist, no git repository, no git."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A key found: where, masked; ``commit`` is set for a key found in git history."""

    path: str
    line: int
    column: int
    masked: str
    environment: Environment
    commit: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "masked": self.masked,
            "environment": self.environment,
            "commit": self.commit,
        }


def _finding(path: str, found: FoundKey, commit: str | None = None) -> Finding:
    return Finding(path, found.line, found.column, found.masked, found.environment, commit)


def _decode(data: bytes) -> str:
    # Keys are ASCII: whatever the file's encoding, undecodable bytes cannot hide one.
    return data.decode("utf-8", errors="replace")


def scan_stream(name: str, stream: BinaryIO) -> list[Finding]:
    """The keys in a stream read to its end (standard input)."""
    return [_finding(name, found) for found in find_keys(_decode(stream.read()))]


def scan_file(path: Path, warn: Warn, shown: str | None = None) -> list[Finding]:
    """The keys in one file; nothing, with a warning, if it is too large or unreadable, and
    nothing, silently, if it is binary."""
    name = shown or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            warn(f"{name}: skipped, larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            return []
        with path.open("rb") as file:
            data = file.read()
    except OSError as exc:
        warn(f"{name}: skipped, cannot read it: {exc.strerror or exc}")
        return []
    if b"\0" in data[:SNIFF_BYTES]:
        return []
    return [_finding(name, found) for found in find_keys(_decode(data))]


def _files_under(root: Path, warn: Warn) -> Iterator[Path]:
    """Regular files under ``root``, sorted, without ``.git`` and without following a
    symbolic link out of the tree (links to directories are never followed: a link cycle
    would never end)."""
    top = root.resolve()
    for directory, dirnames, filenames in os.walk(root, onerror=_walk_warning(warn)):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for filename in sorted(filenames):
            path = Path(directory, filename)
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(top):
                    warn(f"{path}: skipped, a symbolic link out of {root}")
                    continue
                if not target.is_file():
                    continue
            yield path


def _walk_warning(warn: Warn) -> Callable[[OSError], None]:
    def report(exc: OSError) -> None:
        warn(f"{exc.filename}: skipped, cannot read it: {exc.strerror or exc}")

    return report


def check_paths(paths: Iterable[str]) -> None:
    """Raise ScanError naming the first path that does not exist (``-`` is stdin)."""
    for name in paths:
        if name != STDIN and not os.path.lexists(name):
            raise ScanError(f"{name}: no such file or directory")


def scan_paths(paths: Iterable[str], warn: Warn, stdin: BinaryIO) -> Iterator[Finding]:
    """The keys in every file named or under every directory named, in order."""
    for name in paths:
        if name == STDIN:
            yield from scan_stream(STDIN_NAME, stdin)
            continue
        path = Path(name)
        if path.is_dir():
            for file in _files_under(path, warn):
                yield from scan_file(file, warn)
        else:
            yield from scan_file(path, warn)


# --- git history -------------------------------------------------------------------------

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_COMMIT = b"commit "


def _git(*args: str, cwd: Path) -> list[str]:
    return ["git", "-C", str(cwd), "-c", "core.quotePath=false", *args]


def git_root(path: Path) -> Path:
    """The top of the work tree (or the git directory of a bare repository) at ``path``."""
    if not path.is_dir():
        raise ScanError(f"{path}: --git needs a directory inside a git repository")
    try:
        answer = subprocess.run(  # nosec B603: fixed arguments
            _git("rev-parse", "--absolute-git-dir", cwd=path),
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ScanError("--git needs the git command, and it is not on PATH") from exc
    if answer.returncode != 0:
        raise ScanError(f"{path}: not a git repository (or any parent up to the root)")
    return Path(answer.stdout.strip())


def _unquote(name: bytes) -> str:
    """A path as ``git diff`` writes it: C-quoted when it has a tab, newline, quote or
    backslash (``core.quotePath=false`` leaves other bytes as they are)."""
    if name.startswith(b'"') and name.endswith(b'"'):
        name = codecs.escape_decode(name[1:-1])[0]
    return _decode(name)


def scan_git_history(path: Path, warn: Warn) -> Iterator[Finding]:
    """Every key ever added to a file in any commit reachable from any ref, oldest first.

    A key is reported once per file, at the first commit that added it; lines removed
    later are found all the same, which is the point: a key in history is leaked.
    Merge commits show no diff (``git log``'s default), so a key added only while
    resolving a merge conflict is missed.
    """
    git_root(path)
    command = _git(
        "log",
        "-p",
        "--all",
        "--reverse",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--unified=0",
        "--format=commit %H",
        cwd=path,
    )
    seen: set[tuple[str, str]] = set()
    with subprocess.Popen(  # nosec B603: fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as git:
        assert git.stdout is not None  # noqa: S101 (Popen with stdout=PIPE)
        for found in _read_log(git.stdout):
            # The full key only as a set member, to report each key once per file.
            identity = (found.path, found.key)
            if identity in seen:
                continue
            seen.add(identity)
            yield Finding(
                found.path,
                found.line,
                found.column,
                found.masked,
                found.environment,
                found.commit,
            )
        assert git.stderr is not None  # noqa: S101
        error = git.stderr.read()
    if git.returncode != 0:
        message = _decode(error).strip().splitlines()
        # A repository without commits has nothing to scan.
        if not (message and "does not have any commits" in message[-1]):
            raise ScanError(f"git log failed: {message[-1] if message else git.returncode}")


@dataclass(frozen=True, slots=True)
class _Added:
    commit: str
    path: str
    line: int
    column: int
    masked: str
    environment: Environment
    key: str


def _read_log(lines: Iterable[bytes]) -> Iterator[_Added]:
    """Keys on the added lines of ``git log -p --unified=0 --format='commit %H'``.

    Inside a hunk every line starts with ``+``, ``-`` or ``\\``, so a line that does not is
    a header: a new commit, a new file (``+++ b/path``), or a new hunk (``@@``), whose
    ``+start`` numbers the added lines that follow.
    """
    commit = path = ""
    number = 0
    in_hunk = False
    prefix = PREFIX.encode()
    for raw in lines:
        line = raw.rstrip(b"\n")
        if in_hunk and line[:1] in (b"+", b"-", b"\\"):
            if line[:1] == b"+":
                if prefix in line:
                    for found in find_keys(_decode(line[1:])):
                        yield _Added(
                            commit,
                            path,
                            number,
                            found.column,
                            found.masked,
                            found.environment,
                            found.key,
                        )
                number += 1
            continue
        hunk = _HUNK.match(line)
        if hunk:
            in_hunk = True
            number = int(hunk.group(1))
            continue
        in_hunk = False
        if line.startswith(_COMMIT):
            commit = line[len(_COMMIT) :].decode("ascii")
        elif line.startswith(b"+++ "):
            target = line[4:]
            path = _unquote(target)
            path = path.removeprefix("b/")
