"""`ftprep validate` as users run it: the real console script, real files, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import FTPREP, chat, run_ftprep, tool_chat

BAD_ROLE = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}'


def write(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_clean_file_exits_0_with_an_ok_summary(workdir: Path) -> None:
    write(workdir / "train.jsonl", chat(), chat("Which chain?", "An 11-speed one."))
    result = run_ftprep("validate", "train.jsonl", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "train.jsonl: ok, 2 records\n"
    assert result.stderr == ""


def test_warnings_alone_still_exit_0(workdir: Path) -> None:
    write(workdir / "dup.jsonl", chat(), chat())
    result = run_ftprep("validate", "dup.jsonl", cwd=workdir)
    assert result.returncode == 0, result.stdout
    assert "dup.jsonl:2: FT120 exact duplicate of line 1" in result.stdout
    assert result.stdout.endswith("dup.jsonl: ok, 1 warning, 2 records\n")


def test_errors_exit_1_with_path_line_col_code_lines(workdir: Path) -> None:
    write(workdir / "bad.jsonl", chat(), b'{"messages": [],}', BAD_ROLE)
    result = run_ftprep("validate", "bad.jsonl", cwd=workdir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("bad.jsonl:2:16: FT101 invalid JSON: trailing comma")
    assert lines[1].startswith("bad.jsonl:3: FT204 ")
    assert lines[-1] == "bad.jsonl: 2 errors, 2 records"


def test_quiet_prints_only_problems(workdir: Path) -> None:
    write(workdir / "bad.jsonl", BAD_ROLE)
    write(workdir / "good.jsonl", chat())
    result = run_ftprep("validate", "-q", "good.jsonl", "bad.jsonl", cwd=workdir)
    assert result.returncode == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["bad.jsonl"]


def test_json_output_has_the_documented_shape(workdir: Path) -> None:
    write(workdir / "bad.jsonl", chat(), BAD_ROLE)
    result = run_ftprep("validate", "-o", "json", "bad.jsonl", cwd=workdir)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    (f,) = doc["files"]
    assert set(f) >= {"path", "ok", "schema", "bytes", "lines", "records", "problems"}
    assert (f["path"], f["ok"], f["schema"], f["lines"], f["records"]) == (
        "bad.jsonl",
        False,
        "chat",
        2,
        2,
    )
    assert f["bytes"] == (workdir / "bad.jsonl").stat().st_size
    assert f["problems_omitted"] == 0
    (p,) = f["problems"]
    assert set(p) == {"severity", "code", "line", "column", "json_path", "message"}
    assert (p["severity"], p["code"], p["line"], p["json_path"]) == (
        "error",
        "FT204",
        2,
        "$.messages[1].role",
    )


def test_github_output_annotates_each_problem(workdir: Path) -> None:
    write(workdir / "a,b:c.jsonl", b'{"messages": [],}', b"")
    result = run_ftprep("validate", "-o", "github", "a,b:c.jsonl", cwd=workdir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error file=a%2Cb%3Ac.jsonl,line=1,col=16::FT101 invalid JSON")
    assert lines[1].startswith("::error file=a%2Cb%3Ac.jsonl,line=2::FT109 blank line")


def test_max_errors_shows_n_and_counts_the_rest(workdir: Path) -> None:
    write(workdir / "bad.jsonl", *[b"{nope}"] * 7)
    result = run_ftprep("validate", "--max-errors", "2", "bad.jsonl", cwd=workdir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ")[1].split()[0] for line in lines[:2]] == ["FT101", "FT101"]
    assert lines[2] == "bad.jsonl: 7 errors, 0 records (5 more not shown)"
    doc = json.loads(
        run_ftprep("validate", "-o", "json", "--max-errors", "2", "bad.jsonl", cwd=workdir).stdout
    )
    assert (len(doc["files"][0]["problems"]), doc["files"][0]["problems_omitted"]) == (2, 5)


def test_every_file_is_checked_when_an_early_one_fails(workdir: Path) -> None:
    write(workdir / "1.jsonl", BAD_ROLE)
    (workdir / "2.jsonl").write_bytes(b"\x1f\x8b\x08\x00gzip")
    write(workdir / "3.jsonl", chat())
    result = run_ftprep("validate", "-o", "json", "1.jsonl", "2.jsonl", "3.jsonl", cwd=workdir)
    assert result.returncode == 1
    files = json.loads(result.stdout)["files"]
    assert [(f["path"], f["ok"]) for f in files] == [
        ("1.jsonl", False),
        ("2.jsonl", False),
        ("3.jsonl", True),
    ]
    assert files[1]["problems"][0]["code"] == "FT004"


def test_unreadable_path_exits_2_after_checking_the_others(workdir: Path) -> None:
    write(workdir / "good.jsonl", chat())
    (workdir / "folder.jsonl").mkdir()
    result = run_ftprep("validate", "missing.jsonl", "folder.jsonl", "good.jsonl", cwd=workdir)
    assert result.returncode == 2
    assert "missing.jsonl: FT011 cannot read this path: no such file" in result.stdout
    assert "folder.jsonl: FT011 cannot read this path: it is a directory" in result.stdout
    assert "good.jsonl: ok, 1 record" in result.stdout


@pytest.mark.timeout(10)
def test_fifo_returns_at_once_with_ft011(workdir: Path) -> None:
    os.mkfifo(workdir / "pipe.jsonl")
    result = run_ftprep("validate", "pipe.jsonl", cwd=workdir, timeout=8)
    assert result.returncode == 2
    assert "pipe.jsonl: FT011 cannot read this path: it is a FIFO" in result.stdout


@pytest.mark.timeout(10)
def test_dev_zero_returns_at_once_with_ft011(workdir: Path) -> None:
    result = run_ftprep("validate", "/dev/zero", cwd=workdir, timeout=8)
    assert result.returncode == 2
    assert "/dev/zero: FT011 cannot read this path: it is a device" in result.stdout


def test_bad_schema_file_exits_2_with_one_line(workdir: Path) -> None:
    write(workdir / "good.jsonl", chat())
    (workdir / "schema.json").write_text('{"type": "nonsense"}')
    result = run_ftprep("validate", "--schema", "schema.json", "good.jsonl", cwd=workdir)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: schema.json")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--max-size", "lots"], ["--max-errors", "-1"], ["--jobs", "0"], ["--ignore", "E501"]],
)
def test_bad_option_values_exit_2(workdir: Path, args: list[str]) -> None:
    write(workdir / "good.jsonl", chat())
    result = run_ftprep("validate", *args, "good.jsonl", cwd=workdir)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr


def test_over_max_size_names_ftprep_split_and_still_checks_lines(workdir: Path) -> None:
    write(workdir / "big.jsonl", chat(), b"[1]")
    result = run_ftprep("validate", "--max-size", "100B", "big.jsonl", cwd=workdir)
    assert result.returncode == 1
    assert "big.jsonl: FT007 " in result.stdout
    assert "ftprep split" in result.stdout
    assert "big.jsonl:2:1: FT108 " in result.stdout


def test_ignore_and_select_filter_codes(workdir: Path) -> None:
    write(workdir / "mixed.jsonl", chat(), chat(), BAD_ROLE)
    ignored = run_ftprep("validate", "--ignore", "FT2", "mixed.jsonl", cwd=workdir)
    assert ignored.returncode == 0
    assert "FT204" not in ignored.stdout and "FT120" in ignored.stdout
    selected = run_ftprep("validate", "--select", "FT204", "mixed.jsonl", cwd=workdir)
    assert selected.returncode == 1
    assert "FT120" not in selected.stdout and "FT204" in selected.stdout


def test_paths_starting_with_a_dash_work_after_double_dash(workdir: Path) -> None:
    write(workdir / "-v.jsonl", BAD_ROLE)
    result = run_ftprep("validate", "--", "-v.jsonl", cwd=workdir)
    assert result.returncode == 1
    assert "-v.jsonl:1: FT204" in result.stdout


def test_tool_pyproject_defaults_apply_and_flags_win(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text('[tool.ftprep]\nignore = ["FT120"]\nmax-errors = 1\n')
    write(workdir / "d.jsonl", chat(), chat(), b"x", b"y")
    result = run_ftprep("validate", "d.jsonl", cwd=workdir)
    assert result.returncode == 1
    assert "FT120" not in result.stdout
    assert result.stdout.splitlines()[-1] == "d.jsonl: 2 errors, 2 records (1 more not shown)"
    flags = run_ftprep("validate", "--max-errors", "5", "d.jsonl", cwd=workdir)
    assert flags.stdout.splitlines()[-1] == "d.jsonl: 2 errors, 2 records"


def _wait_until_open(pid: int, path: Path, timeout: float) -> None:
    fd_dir = Path(f"/proc/{pid}/fd")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"the process never opened {path}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see open files")
@pytest.mark.timeout(60)
def test_sigint_exits_130_without_a_traceback(workdir: Path) -> None:
    # Records with tool calls take the full check (milliseconds each): thousands of
    # them keep the process busy long after it has opened the file.
    data = workdir / "slow.jsonl"
    data.write_bytes(b"".join(tool_chat(n) + b"\n" for n in range(20_000)))
    proc = subprocess.Popen(
        [str(FTPREP), "validate", "--jobs", "1", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Once the file is open the command runs inside its error handler.
        _wait_until_open(proc.pid, data, timeout=30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted"
    assert out == ""


def test_python_dash_m_runs_the_same_command(workdir: Path) -> None:
    write(workdir / "good.jsonl", chat())
    result = subprocess.run(
        [sys.executable, "-m", "ftprep", "validate", "good.jsonl"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "good.jsonl: ok, 1 record\n")


def test_a_bug_exits_3_with_one_line_and_a_crash_log(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ftprep import validator
    from ftprep.cli import main

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(validator, "validate", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(workdir))
    write(workdir / "good.jsonl", chat())
    result = CliRunner().invoke(main, ["validate", str(workdir / "good.jsonl")])
    assert result.exit_code == 3
    assert "internal error (RuntimeError); this is a bug" in result.output
    logs = list(workdir.glob("ftprep-crash-*.log"))
    assert len(logs) == 1 and "simulated bug" in logs[0].read_text()
