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
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
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


# UTF-16 and UTF-32 text (Windows editors, PowerShell's `>`) is full of NUL bytes: it is
# recognised by its byte order mark before the binary sniff would skip it. UTF-32 first:
# its little-endian mark begins with UTF-16's.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _encoding(data: bytes) -> str | None:
    """The wide encoding a byte order mark at the start of ``data`` names, if any."""
    return next((encoding for bom, encoding in _BOMS if data.startswith(bom)), None)


def _decode(data: bytes, encoding: str = "utf-8") -> str:
    # Keys are ASCII: whatever the file's encoding, undecodable bytes cannot hide one.
    return data.decode(encoding, errors="replace")


def scan_stream(name: str, stream: BinaryIO) -> Iterator[Finding]:
    """The keys in a stream read to its end (standard input), a line at a time: memory is
    bounded by the longest line, not by the stream (``cat huge.log | keyplane scan -``).
    A line is cut at ``MAX_FILE_BYTES``; the cut costs at most the one key it splits."""
    prefix = PREFIX.encode()
    for number, line in enumerate(iter(lambda: stream.readline(MAX_FILE_BYTES), b""), start=1):
        if prefix in line:
            for found in find_keys(_decode(line)):
                yield replace(_finding(name, found), line=number)


def scan_file(path: Path, warn: Warn) -> list[Finding]:
    """The keys in one file; nothing, with a warning, if it is too large or unreadable, and
    nothing, silently, if it is binary."""
    name = str(path)
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
    encoding = _encoding(data)
    if encoding is None and b"\0" in data[:SNIFF_BYTES]:
        return []
    return [_finding(name, found) for found in find_keys(_decode(data, encoding or "utf-8"))]


def _files_under(root: Path, warn: Warn) -> Iterator[Path]:
    """Regular files under ``root``, sorted, without ``.git`` and without following a
    symbolic link out of the tree (links to directories are never followed: a cycle of
    links would never end)."""
    top = root.resolve()
    for directory, dirnames, filenames in os.walk(root, onerror=_walk_warning(warn)):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for filename in sorted(filenames):
            path = Path(directory, filename)
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                warn(f"{path}: skipped, a symbolic link out of {root}")
                continue
            # Not a FIFO, socket or device found on the way (a FIFO would block the scan);
            # one named on the command line is read, as with `keyplane scan <(command)`.
            if path.is_file():
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
    """The git directory of the repository ``path`` is in (``git -C`` works from there too)."""
    if not path.is_dir():
        raise ScanError(f"{path}: --git needs a directory inside a git repository")
    try:
        answer = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
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
    A merge commit is diffed against its first parent, so a key added while resolving a
    conflict is found; what the merge brought from the other branch was seen on that branch
    (every ref's commits come first, in topological order) and is not reported again.
    """
    git_root(path)
    command = _git(
        "log",
        "-p",
        "--all",
        "--reverse",
        "--topo-order",  # reversed: a commit after its parents, whatever the clocks said
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--diff-merges=first-parent",
        "--unified=0",
        "--format=commit %H",
        cwd=path,
    )
    seen: set[tuple[str, str]] = set()
    # stderr to a file, not a pipe: git blocks on a full pipe nobody reads while we read
    # stdout.
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
            command, stdout=subprocess.PIPE, stderr=errors
        ) as git,
    ):
        for finding, key in _read_log(git.stdout or ()):
            # The full key only as a set member, to report each key once per file.
            if (finding.path, key) not in seen:
                seen.add((finding.path, key))
                yield finding
        git.wait()
        errors.seek(0)
        message = _decode(errors.read()).strip().splitlines()
    if git.returncode != 0:  # with --all, a repository without commits is not an error
        raise ScanError(f"git log failed: {message[-1] if message else git.returncode}")


def _read_log(lines: Iterable[bytes]) -> Iterator[tuple[Finding, str]]:
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
                        yield replace(_finding(path, found, commit), line=number), found.key
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
            # git ends the line with a tab when the name has a space (for patch(1)); a
            # name with a tab of its own is quoted.
            path = _unquote(line[4:].removesuffix(b"\t")).removeprefix("b/")
