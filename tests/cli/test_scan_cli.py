"""``keyplane scan``: real keys in real files, standard input and a real git repository;
only checksum-valid keys are reported, always masked, with exit status 0, 1 or 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from keyplane.cli.main import app
from keyplane.domain.tokens import mask_key, mint_key
from keyplane.scanning import MAX_FILE_BYTES

runner = CliRunner()


def scan(*args: str, stdin: str | None = None) -> Result:
    return runner.invoke(app, ["scan", *args], input=stdin)


def assert_never_shown(result: Result, *keys: str) -> None:
    for key in keys:
        assert key not in result.stdout
        assert key not in result.stderr


def wrong_checksum(key: str) -> str:
    return key[:-1] + ("0" if key[-1] != "0" else "1")


def test_a_key_in_a_file_is_reported_masked_with_its_place_and_exit_1(tmp_path: Path) -> None:
    key = mint_key("live")
    config = tmp_path / "settings.env"
    config.write_text(f"DEBUG=1\nKEYPLANE_KEY={key}\n")
    result = scan(str(config))
    assert result.exit_code == 1
    assert result.stdout == f"{config}:2:14  {mask_key(key)} (live)\n"
    assert "1 keyplane key found" in result.stderr
    assert_never_shown(result, key)


def test_a_right_shape_with_a_wrong_checksum_is_not_reported(tmp_path: Path) -> None:
    fake = wrong_checksum(mint_key())
    (tmp_path / "fixture.py").write_text(f'EXAMPLE = "{fake}"\n')
    result = scan(str(tmp_path))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_directories_are_walked_in_order_skipping_git_and_binary_files(tmp_path: Path) -> None:
    live, test, hidden, binary = (mint_key("live"), mint_key("test"), mint_key(), mint_key())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep.txt").write_text(f"x {test}\n")
    (tmp_path / "a.txt").write_text(f"{live}\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(f"{hidden}\n")
    (tmp_path / "image.bin").write_bytes(b"\x89PNG\0\0" + binary.encode())
    result = scan(str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'a.txt'}:1:1  {mask_key(live)} (live)",
        f"{tmp_path / 'b' / 'deep.txt'}:1:3  {mask_key(test)} (test)",
    ]
    assert_never_shown(result, live, test, hidden, binary)


def test_a_file_over_the_size_cap_is_skipped_with_a_warning(tmp_path: Path) -> None:
    key = mint_key()
    big = tmp_path / "dump.sql"
    with big.open("w") as file:
        file.write(f"{key}\n")
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    result = scan(str(tmp_path))
    assert result.exit_code == 0
    assert f"warning: {big}: skipped, larger than 10 MiB" in result.stderr
    assert_never_shown(result, key)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(mint_key())
    secret.chmod(0)
    result = scan(str(tmp_path))
    assert result.exit_code == 0
    assert f"warning: {secret}: skipped, cannot read it" in result.stderr


def test_a_named_file_that_cannot_be_opened_is_skipped_with_a_warning(tmp_path: Path) -> None:
    # A Unix socket cannot be opened as a file, even by root.
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        result = scan(str(path))
    assert result.exit_code == 0
    assert f"warning: {path}: skipped, cannot read it" in result.stderr


def test_sockets_and_fifos_in_a_directory_are_passed_over(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it would wait for a writer forever
    result = scan(str(tmp_path))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_a_symbolic_link_out_of_the_tree_is_not_followed(tmp_path: Path) -> None:
    outside, tree = tmp_path / "outside", tmp_path / "tree"
    outside.mkdir()
    tree.mkdir()
    key = mint_key()
    (outside / "keys.txt").write_text(key)
    (tree / "link.txt").symlink_to(outside / "keys.txt")
    (tree / "dir").symlink_to(outside, target_is_directory=True)
    result = scan(str(tree))
    assert result.exit_code == 0
    assert f"warning: {tree / 'link.txt'}: skipped, a symbolic link out of" in result.stderr
    assert_never_shown(result, key)


def test_dash_reads_standard_input() -> None:
    key = mint_key("test")
    result = scan("-", stdin=f"curl -H 'Authorization: Bearer {key}'\n")
    assert result.exit_code == 1
    assert result.stdout == f"<stdin>:1:32  {mask_key(key)} (test)\n"
    assert_never_shown(result, key)


def test_json_lists_every_finding_without_the_key(tmp_path: Path) -> None:
    key = mint_key("test")
    (tmp_path / "k.txt").write_text(f"\n\n  {key}")
    result = scan("--json", str(tmp_path))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {
            "path": str(tmp_path / "k.txt"),
            "line": 3,
            "column": 3,
            "masked": mask_key(key),
            "environment": "test",
            "commit": None,
        }
    ]
    assert_never_shown(result, key)


def test_json_of_a_clean_scan_is_an_empty_list(tmp_path: Path) -> None:
    result = scan("--json", str(tmp_path))
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


def test_a_missing_path_is_an_error_with_exit_2(tmp_path: Path) -> None:
    result = scan(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_no_path_is_a_usage_error_with_exit_2() -> None:
    assert scan().exit_code == 2


def test_the_help_documents_the_exit_status() -> None:
    result = scan("--help")
    assert "0 no key found, 1 keys found, 2 usage error" in " ".join(result.stdout.split())


# --- git history -------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text("hello\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "start")
    return path


def commit(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def test_a_key_removed_in_a_later_commit_is_found_in_history_with_its_commit(
    repo: Path,
) -> None:
    key = mint_key("live")
    added = commit(repo, "config/app.env", f"A=1\nB=2\nKEY={key}\n", "add config")
    commit(repo, "config/app.env", "A=1\nB=2\n", "remove the key")
    assert scan(str(repo)).exit_code == 0  # gone from the files
    result = scan("--git", str(repo))
    assert result.exit_code == 1
    assert result.stdout == f"{added[:12]}:config/app.env:3:5  {mask_key(key)} (live)\n"
    assert_never_shown(result, key)


def test_history_reports_a_key_once_per_file_at_the_first_commit(repo: Path) -> None:
    key, other = mint_key(), mint_key("test")
    first = commit(repo, "a.txt", f"{key}\n", "add")
    commit(repo, "a.txt", f"# comment\n{key}\n", "move it down")
    second = commit(repo, "b.txt", f"again {key}\n", "copy it")
    git(repo, "checkout", "-q", "-b", "side")
    third = commit(repo, "c.txt", f"{other}\n{wrong_checksum(mint_key())}\n", "on a branch")
    git(repo, "checkout", "-q", "main")
    result = scan("--git", "--json", str(repo))
    assert result.exit_code == 1
    found = [(f["commit"], f["path"], f["line"], f["masked"]) for f in json.loads(result.stdout)]
    assert sorted(found, key=lambda f: f[1]) == [
        (first, "a.txt", 1, mask_key(key)),
        (second, "b.txt", 1, mask_key(key)),
        (third, "c.txt", 1, mask_key(other)),
    ]
    assert_never_shown(result, key, other)


def test_history_names_files_with_unusual_characters(repo: Path) -> None:
    key = mint_key()
    added = commit(repo, 'dir/tab\there "q" é.txt', f"{key}\n", "odd name")
    result = scan("--git", str(repo))
    assert result.stdout == f'{added[:12]}:dir/tab\there "q" é.txt:1:1  {mask_key(key)} (live)\n'


def test_a_clean_history_exits_0(repo: Path) -> None:
    commit(repo, "x.py", f'FAKE = "{wrong_checksum(mint_key())}"\n', "a fixture")
    result = scan("--git", str(repo))
    assert (result.exit_code, result.stdout) == (0, "")


def test_a_repository_without_commits_exits_0(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert scan("--git", str(tmp_path)).exit_code == 0


def test_git_outside_a_repository_is_an_error_with_exit_2(tmp_path: Path) -> None:
    result = scan("--git", str(tmp_path))
    assert result.exit_code == 2
    assert "not a git repository" in result.stderr


def test_git_with_standard_input_is_an_error_with_exit_2() -> None:
    result = scan("--git", "-")
    assert result.exit_code == 2


def test_two_paths_in_one_repository_scan_its_history_once(repo: Path) -> None:
    key = mint_key()
    commit(repo, "src/keys.py", f"KEY = '{key}'\n", "oops")
    result = scan("--git", str(repo), str(repo / "src"))
    assert result.exit_code == 1
    assert result.stdout.count(mask_key(key)) == 1


def test_git_on_a_file_is_an_error_with_exit_2(repo: Path) -> None:
    result = scan("--git", str(repo / "README"))
    assert result.exit_code == 2
    assert "--git needs a directory inside a git repository" in result.stderr


def test_a_history_git_cannot_read_is_an_error_with_exit_2(repo: Path) -> None:
    commit(repo, "a.txt", "text\n", "a blob")
    blob = git(repo, "rev-parse", "HEAD:a.txt")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    result = scan("--git", str(repo))
    assert result.exit_code == 2
    assert "error: git log failed:" in result.stderr


def test_standard_input_is_read_a_line_at_a_time_with_line_numbers() -> None:
    key = mint_key("test")
    result = scan("-", stdin="one\ntwo\n" * 5000 + f"x {key}\n")
    assert result.exit_code == 1
    assert result.stdout == f"<stdin>:10001:3  {mask_key(key)} (test)\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_file_with_a_byte_order_mark_is_scanned(
    tmp_path: Path, encoding: str
) -> None:
    key = mint_key()
    text = f"# written by a Windows editor\nKEY={key}\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":  # Python writes no mark for an explicit byte order
        data = b"\xfe\xff" + data
    (tmp_path / "wide.env").write_bytes(data)
    result = scan(str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == f"{tmp_path / 'wide.env'}:2:5  {mask_key(key)} (live)\n"


def test_a_key_added_while_resolving_a_merge_conflict_is_found(repo: Path) -> None:
    key = mint_key()
    commit(repo, "a.env", "A=1\n", "base")
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, "a.env", "A=side\n", "side")
    git(repo, "checkout", "-q", "main")
    commit(repo, "a.env", "A=main\n", "main")
    with pytest.raises(subprocess.CalledProcessError):  # the conflict stops the merge
        git(repo, "merge", "-q", "side")
    merge = commit(repo, "a.env", f"A={key}\n", "merge side, resolving the conflict")
    assert len(git(repo, "rev-list", "--parents", "-n1", "HEAD").split()) == 3  # a merge
    result = scan("--git", str(repo))
    assert result.exit_code == 1
    assert result.stdout == f"{merge[:12]}:a.env:1:3  {mask_key(key)} (live)\n"
