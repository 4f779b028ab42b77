"""All or nothing: failures, kills, symlinks, existing outputs and hostile names."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ftprep
from ftprep import splitter
from ftprep.errors import InputError, OutputError, SplitError

MakeFile = Callable[..., Path]
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]
Ls = Callable[[Path], list[str]]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def fail_on_call(monkeypatch: pytest.MonkeyPatch, name: str, nth: int, exc: BaseException) -> None:
    """Make ``splitter.<name>`` raise ``exc`` on its ``nth`` call."""
    real = getattr(splitter, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(splitter, name, wrapper)


@pytest.mark.parametrize("engine", ["one thread", "threads"])
def test_a_full_disk_on_the_third_shard_leaves_no_shard_and_no_temp(
    engine: str, make_jsonl: MakeFile, tmp_path: Path, ls: Ls, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_jsonl(count=300)
    out = tmp_path / "out"
    reference = ftprep.split(src, max_size=4000, out_dir=tmp_path / "reference")
    assert len(reference.shards) > 3
    if engine == "threads":
        monkeypatch.setattr(splitter, "_PARALLEL_MIN", 0)
    fail_on_call(monkeypatch, "_copy_bytes", 3, OSError(errno.ENOSPC, "No space left on device"))
    fds = open_fds()

    with pytest.raises(OutputError, match="No space left on device"):
        ftprep.split(src, max_size=4000, out_dir=out)

    assert ls(out) == []
    assert open_fds() == fds
    monkeypatch.undo()  # space is back: the rerun gives the same shards
    again = ftprep.split(src, max_size=4000, out_dir=out)
    assert [s.sha256 for s in again.shards] == [s.sha256 for s in reference.shards]


def test_a_full_disk_while_writing_shuffled_shards_leaves_nothing(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_jsonl(count=300)
    fail_on_call(monkeypatch, "_write_all", 3, OSError(errno.ENOSPC, "No space left on device"))

    with pytest.raises(OutputError):
        ftprep.split(src, max_size=4000, out_dir=tmp_path / "out", shuffle=True, seed=1)

    assert ls(tmp_path / "out") == []


def test_ctrl_c_midway_removes_every_temp_and_lets_the_interrupt_through(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_jsonl(count=300)
    fail_on_call(monkeypatch, "_copy_bytes", 2, KeyboardInterrupt())
    fds = open_fds()

    with pytest.raises(KeyboardInterrupt):
        ftprep.split(src, max_size=4000, out_dir=tmp_path / "out")

    assert ls(tmp_path / "out") == []
    assert open_fds() == fds


def test_an_input_that_grows_during_the_split_is_refused_and_nothing_is_kept(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_jsonl(count=300)
    real = splitter._copy_bytes

    def append_then_copy(*args: Any) -> None:
        with src.open("ab") as fh:
            fh.write(b'{"late": true}\n')
        real(*args)

    monkeypatch.setattr(splitter, "_copy_bytes", append_then_copy)

    with pytest.raises(InputError, match="changed while it was being split"):
        ftprep.split(src, max_size=4000, out_dir=tmp_path / "out")

    assert ls(tmp_path / "out") == []


# The child splits for real, but its second copy stops halfway and waits to be killed.
KILLED_CHILD = """
import sys, time
from pathlib import Path
from ftprep import splitter
from ftprep.cli import main

marker = Path(sys.argv[1])
real = splitter._copy_bytes
calls = 0

def copy_then_hang(src, dst, start, stop, cancel=None):
    global calls
    calls += 1
    if calls == 2:
        real(src, dst, start, start + (stop - start) // 2, cancel)
        marker.touch()
        time.sleep(600)
    real(src, dst, start, stop, cancel)

splitter._copy_bytes = copy_then_hang
sys.argv = ["ftprep", "split", *sys.argv[2:]]
main()
"""


def test_sigkill_midway_leaves_no_file_under_a_final_name_and_a_rerun_cleans_up(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls, run_cli: RunCli
) -> None:
    src = make_jsonl(count=300)
    out = tmp_path / "out"
    marker = tmp_path / "halfway"
    args = [str(src), "--max-size", "4000", "--out-dir", str(out)]
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(marker), *args], cwd=tmp_path)
    try:
        for _ in range(600):  # wait for the copy to be halfway through shard 2
            if marker.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the child never got halfway"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()

    left = ls(out)
    assert left, "the temps of the killed run should still be there"
    assert all(name.startswith(".train.part-") and ".tmp-" in name for name in left), left
    assert all(f".tmp-{child.pid}-" in name for name in left)

    rerun = run_cli("split", *args)

    assert rerun.returncode == 0, rerun.stderr
    names = ls(out)
    assert not [n for n in names if n.startswith(".")], "stale temps of the dead run remain"
    assert b"".join((out / n).read_bytes() for n in names) == src.read_bytes()


def test_temps_of_a_run_still_alive_are_left_alone(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls
) -> None:
    src = make_jsonl(count=5)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".train.part-0001-of-0001.jsonl.tmp-{dead.pid}-abc123"
    alive = out / f".train.part-0001-of-0001.jsonl.tmp-{os.getppid()}-def456"
    unrelated = out / f".notes.txt.tmp-{dead.pid}-xyz"
    for p in (stale, alive, unrelated):
        p.write_bytes(b"partial")

    ftprep.split(src, out_dir=out)

    assert ls(out) == sorted([alive.name, unrelated.name, "train.part-0001-of-0001.jsonl"])


def test_existing_outputs_are_not_overwritten_without_force(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls
) -> None:
    src = make_jsonl(count=300)
    out = tmp_path / "out"
    first = ftprep.split(src, max_size=4000, out_dir=out)
    first.shards[1].path.write_bytes(b"kept\n")
    before = {n: (out / n).read_bytes() for n in ls(out)}

    with pytest.raises(OutputError, match="already exist") as caught:
        ftprep.split(src, max_size=4000, out_dir=out)

    assert str(first.shards[0].path) in str(caught.value)
    assert "--force" in str(caught.value)
    assert {n: (out / n).read_bytes() for n in ls(out)} == before


def test_force_replaces_existing_outputs(make_jsonl: MakeFile, tmp_path: Path) -> None:
    src = make_jsonl(count=300)
    out = tmp_path / "out"
    first = ftprep.split(src, max_size=4000, out_dir=out)
    first.shards[1].path.write_bytes(b"stale\n")

    again = ftprep.split(src, max_size=4000, out_dir=out, force=True)

    assert again.shards[1].path.read_bytes() != b"stale\n"
    assert b"".join(s.path.read_bytes() for s in again.shards) == src.read_bytes()


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_at_an_output_name_is_never_written_through(
    dangling: bool, make_jsonl: MakeFile, tmp_path: Path, ls: Ls
) -> None:
    src = make_jsonl(count=5)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_bytes(b"precious\n")
    link = out / "train.part-0001-of-0001.jsonl"
    link.symlink_to(victim)

    with pytest.raises(OutputError, match="symlink"):
        ftprep.split(src, out_dir=out)
    assert link.is_symlink()
    assert ls(out) == [link.name]

    ftprep.split(src, out_dir=out, force=True)  # replaces the link itself

    assert not link.is_symlink()
    assert link.read_bytes() == src.read_bytes()
    assert victim.read_bytes() == b"precious\n" if not dangling else not victim.exists()


def test_a_directory_at_an_output_name_is_refused_even_with_force(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=5)
    (tmp_path / "out" / "train.part-0001-of-0001.jsonl").mkdir(parents=True)

    with pytest.raises(OutputError, match="not a regular file"):
        ftprep.split(src, out_dir=tmp_path / "out", force=True)


@pytest.mark.parametrize(
    "name",
    [
        "..\\..\\evil.jsonl",
        "..jsonl",
        "-rf .jsonl",
        ".hidden.jsonl",
        "new\nline.jsonl",
        "sp ace & $(rm).jsonl",
        "données.jsonl",
        "x" * 240 + ".jsonl",
    ],
)
def test_odd_input_names_give_plain_output_names_inside_out_dir(
    name: str, tmp_path: Path, ls: Ls
) -> None:
    inputs = tmp_path / "in" / "deep"
    inputs.mkdir(parents=True)
    src = inputs / name
    src.write_bytes(b'{"text": "a"}\n' * 3)
    out = tmp_path / "in" / "out"

    result = ftprep.split(src, out_dir=out)

    (shard,) = result.shards
    assert shard.path.parent == out
    assert ls(out) == [shard.path.name]
    assert ls(tmp_path / "in") == ["deep", "out"]
    assert not shard.path.name.startswith((".", "-"))
    assert re.fullmatch(r"[\w.\-]+", shard.path.name)
    assert len(shard.path.name.encode()) < 255


@pytest.mark.parametrize(
    ("given", "stem"),
    [
        ("data/train.jsonl", "train"),
        ("../../x.jsonl", "x"),
        ("..\\..\\evil.jsonl", "evil"),
        ("C:\\Users\\me\\set.JSONL", "set"),
        ("train set (v2).jsonl", "train_set_v2_"),
        ("...", "data"),
        ("archive.tar.gz", "archive.tar"),
        ("noext", "noext"),
    ],
)
def test_safe_stem_keeps_only_a_plain_last_component(given: str, stem: str) -> None:
    assert splitter.safe_stem(given) == stem


def test_out_dir_is_created_and_a_file_in_its_place_is_refused(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=5)

    result = ftprep.split(src, out_dir=tmp_path / "a" / "b" / "c")
    assert result.shards[0].path.parent.is_dir()

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        ftprep.split(src, out_dir=tmp_path / "file")


def test_shards_get_the_permissions_of_any_new_file(make_jsonl: MakeFile, tmp_path: Path) -> None:
    src = make_jsonl(count=5)
    old = os.umask(0o027)
    try:
        result = ftprep.split(src, out_dir=tmp_path / "out")
    finally:
        os.umask(old)

    assert result.shards[0].path.stat().st_mode & 0o777 == 0o640


def test_a_record_over_the_limit_names_its_line_and_size_and_writes_nothing(
    tmp_path: Path, ls: Ls
) -> None:
    src = tmp_path / "train.jsonl"
    src.write_bytes(b'{"a": 1}\n' * 4 + b'{"text": "' + b"z" * 5000 + b'"}\n' + b'{"a": 2}\n')
    out = tmp_path / "out"

    with pytest.raises(SplitError) as caught:
        ftprep.split(src, max_size=1000, out_dir=out)

    message = str(caught.value)
    assert caught.value.line == 5
    assert f"{src}:5:" in message
    assert "5013 bytes" in message
    assert "1000 bytes" in message
    assert ls(out) == []


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_record_over_the_limit_fails_the_same_with_shuffle(shuffle: bool, tmp_path: Path) -> None:
    src = tmp_path / "train.jsonl"
    src.write_bytes(b"a\n" * 10 + b"b" * 50 + b"\n" + b"c\n")

    with pytest.raises(SplitError, match=r"train.jsonl:11: record is 51 bytes"):
        ftprep.split(src, max_size=20, out_dir=tmp_path / "out", shuffle=shuffle)


def test_unreadable_inputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ftprep.split(tmp_path / "missing.jsonl", out_dir=tmp_path / "out")
    with pytest.raises(InputError, match="directory"):
        ftprep.split(tmp_path, out_dir=tmp_path / "out")
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        ftprep.split(fifo, out_dir=tmp_path / "out")


def test_an_empty_file_has_nothing_to_split(tmp_path: Path, ls: Ls) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"")

    with pytest.raises(SplitError, match="empty"):
        ftprep.split(src, out_dir=tmp_path / "out")
    assert ls(tmp_path / "out") == []


def test_shards_left_by_an_earlier_split_are_pointed_out(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=300)
    out = tmp_path / "out"
    ftprep.split(src, max_size=4000, out_dir=out)

    result = ftprep.split(src, out_dir=out)

    assert len(result.shards) == 1
    assert any("from an earlier split" in w for w in result.warnings)


def test_an_input_cut_short_during_the_split_is_named_and_nothing_is_kept(
    make_jsonl: MakeFile, tmp_path: Path, ls: Ls, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_jsonl(count=300)
    real = splitter._copy_bytes
    calls = 0

    def truncate_then_copy(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            os.truncate(src, 100)
        real(*args)

    monkeypatch.setattr(splitter, "_copy_bytes", truncate_then_copy)

    with pytest.raises(InputError, match=rf"^{re.escape(str(src))}: .*shrank"):
        ftprep.split(src, max_size=4000, out_dir=tmp_path / "out")

    assert ls(tmp_path / "out") == []
