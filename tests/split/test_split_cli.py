"""`ftprep split` as users run it: a real process, its output and its exit codes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

from ftprep.sizes import format_size

MakeFile = Callable[..., Path]
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]
Ls = Callable[[Path], list[str]]


def test_text_output_lists_each_shard_with_size_and_lines(
    make_jsonl: MakeFile, run_cli: RunCli, tmp_path: Path
) -> None:
    src = make_jsonl(count=300)

    done = run_cli("split", str(src), "--max-size", "10KB", "--out-dir", "out", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    rows = done.stdout.splitlines()
    shards = sorted((tmp_path / "out").iterdir())
    assert len(rows) == len(shards) + 1
    for row, shard in zip(rows, shards, strict=False):
        data = shard.read_bytes()
        m = re.fullmatch(r"(\S+) +(\S+ K?B) +(\d+) lines", row)
        assert m is not None, row
        assert m[1] == f"out/{shard.name}"
        assert m[2] == format_size(len(data))
        assert m[3] == str(data.count(b"\n"))
    assert rows[-1] == f"{len(shards)} shards of at most 10.0 KB in out"


def test_json_output_has_exactly_the_documented_shape(
    make_jsonl: MakeFile, run_cli: RunCli, tmp_path: Path
) -> None:
    src = make_jsonl(count=300)
    out = tmp_path / "out"

    done = run_cli(
        "split", str(src), "--max-size", "10KB", "--out-dir", str(out), "--output-format", "json"
    )

    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == {"shards", "validation"}
    assert doc["validation"] is None
    joined = b""
    for shard in doc["shards"]:
        assert set(shard) == {"path", "bytes", "lines", "sha256"}
        data = Path(shard["path"]).read_bytes()
        joined += data
        assert shard["bytes"] == len(data)
        assert shard["lines"] == data.count(b"\n")
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
    assert joined == src.read_bytes()


def test_json_output_carries_the_validation_file(
    make_jsonl: MakeFile, run_cli: RunCli, tmp_path: Path
) -> None:
    src = make_jsonl(count=300)

    done = run_cli(
        "split",
        str(src),
        "--out-dir",
        str(tmp_path / "out"),
        "--validation-size",
        "5%",
        "--shuffle",
        "--seed",
        "11",
        "-o",
        "json",
    )

    assert done.returncode == 0, done.stderr
    validation = json.loads(done.stdout)["validation"]
    assert set(validation) == {"path", "bytes", "lines", "sha256"}
    assert Path(validation["path"]).name == "train.validation.jsonl"
    assert validation["bytes"] <= src.stat().st_size * 0.05


def test_quiet_prints_nothing_on_success(
    make_jsonl: MakeFile, run_cli: RunCli, tmp_path: Path
) -> None:
    src = make_jsonl(count=30)

    done = run_cli("split", str(src), "--out-dir", str(tmp_path / "out"), "-q")

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "out" / "train.part-0001-of-0001.jsonl").exists()


def test_a_record_over_the_limit_exits_1_naming_line_and_size_and_leaves_out_dir_empty(
    run_cli: RunCli, tmp_path: Path, ls: Ls
) -> None:
    src = tmp_path / "train.jsonl"
    src.write_bytes(b'{"a": 1}\n' * 3 + b'{"t": "' + b"q" * 2000 + b'"}\n')
    out = tmp_path / "out"
    out.mkdir()

    done = run_cli("split", str(src), "--max-size", "1KB", "--out-dir", str(out))

    assert done.returncode == 1
    assert done.stdout == ""
    assert f"{src}:4: record is 2.0 KB (2010 bytes)" in done.stderr
    assert "Traceback" not in done.stderr
    assert ls(out) == []


def test_existing_outputs_exit_2_and_force_replaces_them(
    make_jsonl: MakeFile, run_cli: RunCli, tmp_path: Path
) -> None:
    src = make_jsonl(count=30)
    args = ["split", str(src), "--out-dir", str(tmp_path / "out")]
    assert run_cli(*args).returncode == 0

    refused = run_cli(*args)
    forced = run_cli(*args, "--force")

    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert forced.returncode == 0, forced.stderr


def test_usage_mistakes_exit_2_without_a_traceback(
    make_jsonl: MakeFile, run_cli: RunCli, tmp_path: Path
) -> None:
    src = make_jsonl(count=3)
    out = str(tmp_path / "out")
    cases = [
        ["split", str(tmp_path / "missing.jsonl"), "--out-dir", out],
        ["split", str(src), "--out-dir", out, "--max-size", "big"],
        ["split", str(src), "--out-dir", out, "--seed", "3"],
        ["split", str(src), "--out-dir", out, "--validation-size", "200%"],
        ["split", str(src)],
    ]
    for args in cases:
        done = run_cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert not Path(out).exists()


def run_with_terminal_stderr(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal, as when a person watches it."""
    primary, secondary = pty.openpty()
    # A fresh pseudo-terminal is 0 columns wide, and tqdm draws nothing in 0 columns.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "ftprep", *args],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env={**os.environ, "PRE_COMMIT": ""},
        )
        os.close(secondary)
        stdout, _ = child.communicate(timeout=120)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    return child.returncode, stdout.decode(), seen.decode(errors="replace")


def test_a_progress_bar_shows_on_a_terminal_but_never_with_json(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=300)

    code, _out, err = run_with_terminal_stderr(
        "split", str(src), "--max-size", "10KB", "--out-dir", str(tmp_path / "a")
    )
    assert code == 0
    assert "split" in err and "%" in err

    code, out, err = run_with_terminal_stderr(
        "split", str(src), "--max-size", "10KB", "--out-dir", str(tmp_path / "b"), "-o", "json"
    )
    assert code == 0
    assert json.loads(out)["shards"]
    assert err == ""
