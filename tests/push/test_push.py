"""`ftprep push` and `ftprep.push`: validation gates the upload, shards are made and
recorded, dry runs send nothing, and the emulator mode works on a fresh directory."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import pytest

from ftprep.client import FilesClient
from ftprep.emulator import Emulator
from ftprep.errors import InputError, UsageError
from ftprep.ledger import Ledger
from ftprep.pusher import push, upload

BAD_LINE = b'{"messages": [{"role": "bot", "content": "hi"}]}\n'


def ftprep(*args: str, cwd: Path, key: str | None = "k") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTPREP_", "MISTRAL_"))}
    if key is not None:
        env["MISTRAL_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "ftprep", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_invalid_file_blocks_every_upload_and_problems_print_like_validate(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "good.jsonl", 3)
    bad = write_chat(tmp_path / "bad.jsonl", 2)
    bad.write_bytes(bad.read_bytes() + BAD_LINE)
    r = ftprep("push", "good.jsonl", "bad.jsonl", "--base-url", emulator.base_url, cwd=tmp_path)
    assert r.returncode == 1
    assert emulator.requests == []
    problem_lines = [line for line in r.stdout.splitlines() if line.startswith("bad.jsonl:3:")]
    assert problem_lines, r.stdout
    validate = ftprep("validate", "good.jsonl", "bad.jsonl", cwd=tmp_path)
    assert validate.stdout == r.stdout
    assert "nothing was uploaded" in r.stderr and "--allow-invalid" in r.stderr
    assert not (tmp_path / ".ftprep" / "ledger").exists()


def test_invalid_push_as_json_reports_the_problems_and_no_uploads(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    bad = write_chat(tmp_path / "bad.jsonl", 1)
    bad.write_bytes(bad.read_bytes() + BAD_LINE)
    r = ftprep("push", "bad.jsonl", "--base-url", emulator.base_url, "-o", "json", cwd=tmp_path)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert (out["ok"], out["uploads"], out["training_files"]) == (False, [], [])
    assert out["files"][0]["problems"][0]["line"] == 2


def test_library_push_refuses_invalid_data_unless_allowed(
    tmp_path: Path, emulator: Emulator, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    bad = write_chat(tmp_path / "bad.jsonl", 2)
    bad.write_bytes(bad.read_bytes() + b'{"text": "a pretrain line in a chat file"}\n')
    refused = push([bad], client=client, ledger=tmp_path / "ledger", schema="chat")
    assert refused.refused and not refused.ok and refused.uploads == []
    assert refused.report is not None and not refused.report.ok
    assert emulator.files() == []
    # The emulator validates too, so only a file it accepts can prove --allow-invalid:
    # the same file under the pretrain-or-chat auto rules is the server's business.
    bad.write_bytes(b"".join(write_chat(tmp_path / "x.jsonl", 2).read_bytes().splitlines(True)))
    allowed = push(
        [bad], client=client, ledger=tmp_path / "ledger", schema="pretrain", allow_invalid=True
    )
    assert allowed.ok and allowed.report is not None and not allowed.report.ok
    assert [u.status for u in allowed.uploads] == ["uploaded"]


def test_project_config_schema_applies_to_push(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "chat.jsonl", 2)
    (tmp_path / "pyproject.toml").write_text('[tool.ftprep]\nschema = "pretrain"\n')
    r = ftprep("push", "chat.jsonl", "--base-url", emulator.base_url, cwd=tmp_path)
    assert r.returncode == 1 and emulator.requests == []
    r = ftprep(
        "push", "chat.jsonl", "--schema", "chat", "--base-url", emulator.base_url, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr


def test_push_text_ends_with_training_files_and_quiet_prints_only_them(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 30, pad=50)
    args = ("push", "a.jsonl", "--max-size", "2KB", "--base-url", emulator.base_url)
    r = ftprep(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ids = [f["id"] for f in emulator.files()]
    last = r.stdout.splitlines()[-1]
    assert last.startswith("training_files: ")
    listed = json.loads(last.removeprefix("training_files: "))
    assert sorted(t["file_id"] for t in listed) == sorted(ids) and len(ids) > 1
    assert all(t["weight"] == 1 for t in listed)
    quiet = ftprep(*args, "-q", cwd=tmp_path)
    assert quiet.returncode == 0
    assert json.loads(quiet.stdout) == listed
    shards = sorted((tmp_path / ".ftprep" / "shards").iterdir())
    assert shards[0].name == f"a.part-0001-of-{len(ids):04}.jsonl"
    assert b"".join(p.read_bytes() for p in shards) == (tmp_path / "a.jsonl").read_bytes()
    assert (tmp_path / ".ftprep" / ".gitignore").read_text() == "*\n"


def test_push_json_marks_shards_with_their_source(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 20, pad=50)
    write_chat(tmp_path / "small.jsonl", 1, start=99)
    r = ftprep(
        "push", "a.jsonl", "small.jsonl", "--max-size", "1500B", "--out-dir", "parts",
        "--base-url", emulator.base_url, "-o", "json", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    *shards, small = out["uploads"]
    assert {u["source"] for u in shards} == {"a.jsonl"} and len(shards) > 1
    assert all(Path(u["path"]).parent.name == "parts" for u in shards)
    assert small["path"] == "small.jsonl" and "source" not in small
    assert out["ok"] is True and [f["path"] for f in out["files"]] == ["a.jsonl", "small.jsonl"]
    assert not (tmp_path / "parts" / ".gitignore").exists()


def test_rerun_of_a_sharded_push_does_not_shard_again(
    tmp_path: Path, emulator: Emulator, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "a.jsonl", 20, pad=50)
    ledger = Ledger(tmp_path / "ledger")
    first = push([data], client=client, ledger=ledger, max_size=1500, out_dir=tmp_path / "s")
    for shard in (tmp_path / "s").iterdir():
        shard.unlink()
    again = push([data], client=client, ledger=ledger, max_size=1500, out_dir=tmp_path / "s")
    assert [u.file_id for u in again.uploads] == [u.file_id for u in first.uploads]
    assert {u.status for u in again.uploads} == {"reused"}
    assert list((tmp_path / "s").iterdir()) == []
    assert ledger.file_ids(data) == first.file_ids


def test_two_inputs_that_would_share_shard_names_are_refused(
    tmp_path: Path, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write_chat(tmp_path / "x" / "train.jsonl", 20, pad=50)
    b = write_chat(tmp_path / "y" / "train.jsonl", 20, pad=60)
    with pytest.raises(UsageError, match="same shard names"):
        push([a, b], client=client, ledger=tmp_path / "ledger", max_size=1500)


def test_dry_run_sends_nothing_writes_no_shards_and_needs_no_key(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 20, pad=50)
    write_chat(tmp_path / "b.jsonl", 2, start=50)
    base = ("--base-url", emulator.base_url)
    assert ftprep("push", "b.jsonl", *base, cwd=tmp_path).returncode == 0
    sent = len(emulator.requests)
    r = ftprep(
        "push", "a.jsonl", "b.jsonl", "--max-size", "1500B", "--dry-run", *base, "-o", "json",
        cwd=tmp_path, key=None,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    statuses = [u["status"] for u in out["uploads"]]
    assert statuses[-1] == "recorded" and set(statuses[:-1]) == {"new"}
    assert out["uploads"][-1]["file_id"] == emulator.files()[0]["id"]
    assert out["dry_run"] is True
    assert len(emulator.requests) == sent
    assert not (tmp_path / ".ftprep" / "shards").exists()
    text = ftprep("push", "a.jsonl", "--max-size", "1500B", "--dry-run", *base, cwd=tmp_path)
    assert "nothing was sent" in text.stdout and "training_files" not in text.stdout


def test_emulator_push_on_a_fresh_directory_needs_no_key_and_says_where_it_went(
    tmp_path: Path, write_chat: Callable[..., Path]
) -> None:
    write_chat(tmp_path / "a.jsonl", 3)
    r = ftprep("push", "--emulator", "a.jsonl", cwd=tmp_path, key=None)
    assert r.returncode == 0, r.stderr
    assert "local emulator" in r.stderr and "nothing is sent to Mistral" in r.stderr
    assert "emulator:" in r.stdout
    lines = r.stdout.splitlines()
    assert lines[0] == "a.jsonl: ok, 3 records"
    status, file_id, path = lines[1].split()[:3]
    assert (status, path) == ("uploaded", "a.jsonl")
    again = ftprep("push", "--emulator", "a.jsonl", cwd=tmp_path, key=None)
    assert again.stdout.splitlines()[1].split()[:2] == ["reused", file_id]
    shown = ftprep("ledger", "--emulator", "-q", cwd=tmp_path, key=None)
    assert shown.stdout.split() == [file_id]


def test_file_rewritten_during_upload_is_not_recorded_and_its_upload_is_removed(
    tmp_path: Path, emulator: Emulator, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "a.jsonl", 3)
    original = data.read_bytes()

    def rewrite_once(n: int) -> None:
        # Same size, other bytes: only the file's stamp can tell.
        if n > 0 and data.read_bytes() == original:
            data.write_bytes(original.replace(b"answer 0", b"answer 9"))

    with pytest.raises(InputError, match="changed while ftprep was working on it"):
        upload([data], client=client, ledger=tmp_path / "ledger", progress=rewrite_once)
    assert emulator.files() == []
    assert Ledger(tmp_path / "ledger").entries() == []


def test_file_growing_during_upload_is_a_clear_input_error(
    tmp_path: Path, emulator: Emulator, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "a.jsonl", 3)

    def append_once(n: int) -> None:
        if n > 0 and data.stat().st_size < 10_000:
            with open(data, "ab") as fh:
                fh.write(write_chat(tmp_path / "more.jsonl", 50).read_bytes())

    with pytest.raises(InputError, match="changed while ftprep was working on it"):
        upload([data], client=client, ledger=tmp_path / "ledger", progress=append_once)
    assert emulator.files() == []
    assert Ledger(tmp_path / "ledger").entries() == []


def _run_on_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); return (code, stderr)."""
    primary, secondary = pty.openpty()
    # A new pty is 0x0, and tqdm draws nothing in zero columns: give it a real size.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTPREP_", "MISTRAL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftprep", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.stdout is not None
    proc.stdout.read()
    proc.stdout.close()
    code = proc.wait(timeout=60)
    os.close(primary)
    return code, b"".join(chunks).decode(errors="replace")


def test_progress_bars_only_on_a_terminal(tmp_path: Path, write_chat: Callable[..., Path]) -> None:
    write_chat(tmp_path / "a.jsonl", 20, pad=50)
    args = ["push", "--emulator", "a.jsonl", "--max-size", "1500B"]
    code, err = _run_on_terminal(args, tmp_path)
    assert code == 0, err
    assert "uploaded:" in err and "a.part-0001-of-" in err
    piped = ftprep(*args, cwd=tmp_path, key=None)
    assert "uploaded:" not in piped.stderr and "%|" not in piped.stderr
    code, err = _run_on_terminal([*args, "--no-progress"], tmp_path)
    assert code == 0 and "%|" not in err


def test_state_never_shows_up_in_git_status(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_chat(repo / "a.jsonl", 20, pad=50)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "a.jsonl"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "data"], cwd=repo, check=True)
    r = ftprep("push", "a.jsonl", "--max-size", "1500B", "--base-url", emulator.base_url, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert (repo / ".ftprep" / "shards").is_dir() and (repo / ".ftprep" / "ledger").is_file()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""
