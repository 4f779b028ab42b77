"""The ftprep-validate hook, run by the real pre-commit program on a real git repository.

pre-commit installs ftprep from this working tree into its own environment (once per
test session, cached under a temporary PRE_COMMIT_HOME), then runs the hook the way a
user's repository would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_TEMPLATE = (
    '{{"messages": [{{"role": "user", "content": "hi {n}"}}, '
    '{{"role": "assistant", "content": "hello"}}]}}\n'
)
GOOD = GOOD_TEMPLATE.format(n=0)


def good_lines(count: int) -> str:
    return "".join(GOOD_TEMPLATE.format(n=n) for n in range(count))


BAD_ROLE = (
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}\n'
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "data-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "dev")
    git(repo, "config", "commit.gpgsign", "false")
    yield repo


def run_hook(
    repo: Path, home: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in {"MISTRAL_API_KEY", "FTPREP_BASE_URL"}
    }
    environ["PRE_COMMIT_HOME"] = str(home)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "ftprep-validate", *extra],
        cwd=repo,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.timeout(900)
def test_a_bad_line_fails_the_hook_with_path_line_col_code(
    repo: Path, pre_commit_home: Path
) -> None:
    (repo / "good.jsonl").write_text(good_lines(3))
    (repo / "bad.jsonl").write_text(GOOD + BAD_ROLE)
    (repo / "notes.txt").write_text("not data\n")
    git(repo, "add", ".")
    result = run_hook(repo, pre_commit_home, "--all-files")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "Failed" in out
    bad_lines = [line for line in out.splitlines() if line.startswith("bad.jsonl:2:")]
    assert bad_lines, out
    code = bad_lines[0].split(": ", 1)[1].split()[0]
    assert code.startswith("FT")
    assert [line for line in out.splitlines() if line.startswith("good.jsonl:")] == [
        "good.jsonl: ok, 3 records"
    ]
    assert "notes.txt" not in out


@pytest.mark.timeout(900)
def test_clean_files_pass_and_nothing_is_written(repo: Path, pre_commit_home: Path) -> None:
    (repo / "train.jsonl").write_text(good_lines(2))
    (repo / "-rf.jsonl").write_text(GOOD)
    (repo / "sub").mkdir()
    (repo / "sub" / "valid.jsonl").write_text(GOOD)
    os.symlink("train.jsonl", repo / "link.jsonl")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "data")
    before = sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts)
    result = run_hook(repo, pre_commit_home, "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout
    after = sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts)
    assert after == before
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""


@pytest.mark.timeout(900)
def test_a_dash_named_bad_file_is_checked_as_a_file(repo: Path, pre_commit_home: Path) -> None:
    (repo / "-rf.jsonl").write_text(BAD_ROLE)
    git(repo, "add", ".")
    result = run_hook(repo, pre_commit_home, "--all-files")
    assert result.returncode == 1
    assert "-rf.jsonl:1:" in result.stdout
