"""`ftprep upload` and `ftprep ledger` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ftprep.emulator import Emulator


def ftprep(
    *args: str, cwd: Path, key: str | None = "k", **env: str
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("FTPREP_", "MISTRAL_"))}
    if key is not None:
        full["MISTRAL_API_KEY"] = key
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "ftprep", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upload_prints_one_line_per_file_and_where_ids_went(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    r = ftprep("upload", "a.jsonl", "--base-url", emulator.base_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [line, summary] = r.stdout.splitlines()
    file_id = emulator.files()[0]["id"]
    assert line.split()[:2] == ["uploaded", file_id] and "a.jsonl" in line
    assert summary == f"1 uploaded; recorded in .ftprep/ledger for {emulator.base_url}"
    assert (tmp_path / ".ftprep" / ".gitignore").is_file()


def test_upload_json_has_the_stable_shape(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    args = ("upload", "a.jsonl", "--base-url", emulator.base_url, "-o", "json")
    ftprep(*args, cwd=tmp_path)
    r = ftprep(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    [u] = out["uploads"]
    assert {"path", "sha256", "bytes", "file_id", "status"} <= set(u)
    assert (u["path"], u["status"], u["file_id"]) == (
        "a.jsonl",
        "reused",
        emulator.files()[0]["id"],
    )
    assert "training_files" not in out


def test_quiet_upload_prints_only_ids(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    write_chat(tmp_path / "b.jsonl", 2, start=9)
    r = ftprep("upload", "-q", "a.jsonl", "b.jsonl", "--base-url", emulator.base_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(f["id"] for f in emulator.files())


def test_missing_file_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    r = ftprep("upload", "nope.jsonl", "--base-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: nope.jsonl: no such file"


def test_no_key_says_which_variable_and_records_nothing(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    r = ftprep("upload", "a.jsonl", "--base-url", emulator.base_url, cwd=tmp_path, key=None)
    assert r.returncode == 1
    assert "MISTRAL_API_KEY" in r.stderr and "Traceback" not in r.stderr
    assert emulator.files() == []
    assert json.loads((tmp_path / ".ftprep" / "ledger").read_text())["entries"] == []


def test_emulator_and_base_url_exclude_each_other(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("{}\n")
    r = ftprep("upload", "a.jsonl", "--emulator", "--base-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 2
    assert "exclude each other" in r.stderr


def test_upload_with_emulator_needs_no_key_and_says_so(
    tmp_path: Path, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    r = ftprep("upload", "a.jsonl", "--emulator", cwd=tmp_path, key=None)
    assert r.returncode == 0, r.stderr
    assert "local emulator" in r.stderr and "nothing is sent to Mistral" in r.stderr
    assert (tmp_path / ".ftprep" / "emulator" / "ledger").is_file()
    assert not (tmp_path / ".ftprep" / "ledger").exists()
    shown = ftprep("ledger", "--emulator", "-q", cwd=tmp_path, key=None)
    assert shown.stdout.split() == [line.split()[1] for line in r.stdout.splitlines()[:1]]


def test_ledger_lists_entries_as_text_and_json(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    ftprep("upload", "a.jsonl", "--base-url", emulator.base_url, cwd=tmp_path)
    file_id = emulator.files()[0]["id"]
    text = ftprep("ledger", cwd=tmp_path, key=None)
    assert text.returncode == 0
    assert text.stdout.splitlines()[0] == f"{emulator.base_url} (purpose fine-tune):"
    assert file_id in text.stdout and "a.jsonl" in text.stdout
    out = json.loads(ftprep("ledger", "-o", "json", cwd=tmp_path, key=None).stdout)
    [u] = out["uploads"]
    assert (u["file_id"], u["status"], u["path"]) == (file_id, "uploaded", "a.jsonl")


def test_ledger_of_nothing_says_so(tmp_path: Path) -> None:
    r = ftprep("ledger", "--ledger", "none/ledger", cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, "none/ledger: nothing recorded yet")


def test_corrupt_ledger_is_reported_not_shown_as_empty(tmp_path: Path) -> None:
    (tmp_path / "ledger").write_bytes(b"\x00garbage")
    r = ftprep("ledger", "--ledger", "ledger", cwd=tmp_path)
    assert r.returncode == 1
    assert "unreadable" in r.stderr and "rebuilds it" in r.stderr


def test_symlinked_ledger_is_refused(tmp_path: Path, write_chat: Callable[..., Path]) -> None:
    write_chat(tmp_path / "a.jsonl", 2)
    (tmp_path / "target").write_bytes(b"keep")
    (tmp_path / "ledger").symlink_to(tmp_path / "target")
    r = ftprep(
        "upload", "a.jsonl", "--ledger", "ledger", "--base-url", "http://127.0.0.1:9", cwd=tmp_path
    )
    assert r.returncode == 1 and "symbolic link" in r.stderr
    assert (tmp_path / "target").read_bytes() == b"keep"


def test_push_takes_ignore_and_select_like_validate(tmp_path: Path) -> None:
    record = (
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'
    )
    bad = '{"messages": [{"role": "user", "content": "q"}]}'
    (tmp_path / "d.jsonl").write_text(f"{record}\n{record}\n{bad}\n")
    refused = ftprep("push", "--dry-run", "d.jsonl", cwd=tmp_path, key=None)
    assert refused.returncode == 1
    assert "FT301" in refused.stdout and "FT120" in refused.stdout
    selected = ftprep("push", "--dry-run", "--select", "FT120", "d.jsonl", cwd=tmp_path, key=None)
    assert selected.returncode == 0, selected.stdout + selected.stderr
    assert "FT120" in selected.stdout and "FT301" not in selected.stdout
    ignored = ftprep("push", "--dry-run", "--ignore", "FT3", "d.jsonl", cwd=tmp_path, key=None)
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr
    assert "FT301" not in ignored.stdout
