"""Permission denied, for real, even when the tests run as root.

Root reads files whatever their mode, so a plain chmod cannot produce EACCES there.
The command runs under `setpriv` without the capabilities that let root ignore file
modes, over a file with mode 000.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECORD = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
DROP = "-dac_override,-dac_read_search"


def without_file_mode_override() -> list[str]:
    if os.geteuid() != 0:
        return []  # an ordinary user already obeys file modes
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be enforced")
    return [setpriv, "--bounding-set", DROP, "--inh-caps", DROP]


def test_a_file_that_cannot_be_opened_is_ft011_exit_2_and_the_rest_is_checked(
    tmp_path: Path,
) -> None:
    locked = tmp_path / "locked.jsonl"
    locked.write_text(RECORD)
    locked.chmod(0o000)
    (tmp_path / "ok.jsonl").write_text(RECORD)
    command = [sys.executable, "-m", "ftprep", "validate", "-o", "json"]
    result = subprocess.run(
        [*without_file_mode_override(), *command, "locked.jsonl", "ok.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    [problem] = files["locked.jsonl"]["problems"]
    assert problem["code"] == "FT011"
    assert "permission denied" in problem["message"].lower()
    assert files["ok.jsonl"]["ok"] is True
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["validate", "push"])
def test_a_missing_path_is_exit_2_for_validate_and_push_alike(tmp_path: Path, command: str) -> None:
    extra = ["--dry-run"] if command == "push" else []
    result = subprocess.run(
        [sys.executable, "-m", "ftprep", command, *extra, "missing.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "missing.jsonl" in result.stdout + result.stderr
    assert not (tmp_path / ".ftprep").exists()
