"""[tool.ftprep] as the commands see it: defaults, command-line precedence, bad keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHAT = (
    '{{"messages": [{{"role": "user", "content": "q{n}"}}, '
    '{{"role": "assistant", "content": "a{n}"}}]}}\n'
)
PRETRAIN = '{{"text": "document {n}"}}\n'


def ftprep(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftprep", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_key_is_exit_2_and_named(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ftprep]\nmax-size = "lots"\n')
    (tmp_path / "a.jsonl").write_text(CHAT.format(n=1))
    result = ftprep(tmp_path, "validate", "a.jsonl")
    assert result.returncode == 2
    assert "max-size" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_configured_schema_applies_and_the_command_line_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ftprep]\nschema = "pretrain"\n')
    (tmp_path / "chat.jsonl").write_text(CHAT.format(n=1))
    configured = ftprep(tmp_path, "validate", "-o", "json", "chat.jsonl")
    assert configured.returncode == 1
    assert json.loads(configured.stdout)["files"][0]["schema"] == "pretrain"
    overridden = ftprep(tmp_path, "validate", "-o", "json", "--schema", "chat", "chat.jsonl")
    assert overridden.returncode == 0, overridden.stdout
    assert json.loads(overridden.stdout)["files"][0]["schema"] == "chat"


def test_per_path_schema_and_ignore_apply_by_glob(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.ftprep.per-path-schema]\n"
        '"docs/*.jsonl" = "pretrain"\n'
        "[tool.ftprep.per-path-ignore]\n"
        '"legacy/*.jsonl" = ["FT120"]\n'
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "legacy").mkdir()
    (tmp_path / "docs" / "d.jsonl").write_text(PRETRAIN.format(n=1) + PRETRAIN.format(n=2))
    (tmp_path / "legacy" / "dup.jsonl").write_text(CHAT.format(n=1) * 2)
    (tmp_path / "dup.jsonl").write_text(CHAT.format(n=1) * 2)
    result = ftprep(
        tmp_path, "validate", "-o", "json", "docs/d.jsonl", "legacy/dup.jsonl", "dup.jsonl"
    )
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    assert files["docs/d.jsonl"]["schema"] == "pretrain"
    assert files["legacy/dup.jsonl"]["problems"] == []
    assert [p["code"] for p in files["dup.jsonl"]["problems"]] == ["FT120"]


def test_ignore_and_select_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "dup.jsonl").write_text(CHAT.format(n=1) * 2 + '{"messages": []}\n')
    ignored = ftprep(tmp_path, "validate", "-o", "json", "--ignore", "FT120", "dup.jsonl")
    codes = [p["code"] for p in json.loads(ignored.stdout)["files"][0]["problems"]]
    assert "FT120" not in codes and codes
    selected = ftprep(tmp_path, "validate", "-o", "json", "--select", "FT120", "dup.jsonl")
    codes = [p["code"] for p in json.loads(selected.stdout)["files"][0]["problems"]]
    assert codes == ["FT120"]
    assert selected.returncode == 0  # only a warning is left
