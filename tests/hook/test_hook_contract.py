"""What the hook promises besides verdicts: offline, read-only, many paths, few handles."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

RECORD = (
    '{{"messages": [{{"role": "user", "content": "q{n}"}}, '
    '{{"role": "assistant", "content": "a"}}]}}\n'
)

# Runs `ftprep validate` in a fresh interpreter where opening any socket fails loudly,
# and where at most 64 file descriptors may be open at once.
NO_NETWORK_MAIN = """
import resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
def refuse(*args, **kwargs):
    raise SystemExit("network use attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from ftprep.cli import main
sys.argv = ["ftprep", "validate", *sys.argv[1:]]
main()
"""


def run_offline(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK_MAIN, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.timeout(600)
def test_three_thousand_paths_are_checked_within_64_file_handles(tmp_path: Path) -> None:
    names = []
    for i in range(3000):
        name = f"f{i:04d}.jsonl"
        (tmp_path / name).write_text(RECORD.format(n=i))
        names.append(name)
    (tmp_path / "f1234.jsonl").write_text('{"messages": []}\n')
    before = sorted(os.listdir(tmp_path))
    result = run_offline(tmp_path, "-q", *names)
    assert result.returncode == 1, result.stderr[-2000:]
    problem_lines = [
        line for line in result.stdout.splitlines() if line.startswith("f1234.jsonl:1")
    ]
    assert problem_lines, result.stdout[-2000:]
    assert "network use attempted" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_the_hook_needs_no_key_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(RECORD.format(n=1) + RECORD.format(n=2))
    (tmp_path / "-rf.jsonl").write_text(RECORD.format(n=3))
    os.symlink("a.jsonl", tmp_path / "link.jsonl")
    before = sorted(os.listdir(tmp_path))
    result = run_offline(tmp_path, "a.jsonl", "-rf.jsonl", "link.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-rf.jsonl: ok, 1 record" in result.stdout
    assert sorted(os.listdir(tmp_path)) == before


def test_the_file_handle_limit_in_the_harness_is_real() -> None:
    # Guards the first test: the child really runs under the lowered limit.
    code = NO_NETWORK_MAIN.split("from ftprep")[0] + (
        "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "64"
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] != 0
