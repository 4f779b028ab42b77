"""`ftprep push` as a real process, killed with SIGKILL at named points, rerun, and
checked against the emulator: exactly one server file per shard, each recorded.

The kill points are deterministic: ``FTPREP_TEST_KILL_AT=point#n`` makes ftprep send
itself SIGKILL the n-th time it reaches ``point`` (see ``ftprep.ledger.checkpoint``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ftprep.emulator import Emulator
from ftprep.ledger import Ledger

SHARDS = 5


@dataclass
class Job:
    """One dataset, one ledger, one emulator: everything a push run needs."""

    tmp: Path
    emu: Emulator
    key: str
    data: Path
    max_size: int

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.tmp / "state" / "ledger")

    def args(self, *extra: str) -> list[str]:
        return [
            "push",
            str(self.data),
            "--max-size",
            str(self.max_size),
            "--out-dir",
            str(self.tmp / "shards"),
            "--ledger",
            str(self.ledger.path),
            "--base-url",
            self.emu.base_url,
            "-o",
            "json",
            *extra,
        ]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FTPREP_")}
        env.update(MISTRAL_API_KEY=self.key, PYTHONUNBUFFERED="1", **extra)
        return env

    def run(self, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ftprep", *self.args(*extra)],
            env=self.env(**env),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, *extra: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "ftprep", *self.args(*extra)],
            env=self.env(**env),
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def check_one_file_per_shard(self, out: dict[str, object]) -> None:
        uploads = out["uploads"]
        assert isinstance(uploads, list) and len(uploads) == SHARDS
        server = self.emu.files()
        assert len(server) == SHARDS, [f["filename"] for f in server]
        by_name = {f["filename"]: f["id"] for f in server}
        assert len(by_name) == SHARDS
        for u in uploads:
            assert by_name[u["filename"]] == u["file_id"]
        entries = {e.sha256: e for e in self.ledger.entries()}
        for u in uploads:
            entry = entries[u["sha256"]]
            assert (entry.state, entry.file_id) == ("uploaded", u["file_id"])
        assert self.ledger.file_ids(self.data) == [u["file_id"] for u in uploads]
        # The emulator, like Mistral, answers a repeated POST of the same name and
        # content with the existing file, so duplicates cannot show on the server:
        # count the POSTs it accepted instead. One per shard, over all runs.
        accepted = [
            r
            for r in self.emu.requests
            if (r.method, r.path, r.status) == ("POST", "/v1/files", 200)
        ]
        assert len(accepted) == SHARDS
        assert out["training_files"] == [{"file_id": u["file_id"], "weight": 1} for u in uploads]


@pytest.fixture
def job(
    tmp_path: Path, emulator: Emulator, canary_key: str, write_chat: Callable[..., Path]
) -> Job:
    data = write_chat(tmp_path / "train.jsonl", 40, pad=40)
    size = data.stat().st_size
    # Just over a fifth: the splitter's balanced shards come out as five.
    return Job(tmp_path, emulator, canary_key, data, size // SHARDS + 200)


def test_push_sends_five_shards_and_a_rerun_sends_nothing(job: Job) -> None:
    first = job.run()
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert [u["status"] for u in out["uploads"]] == ["uploaded"] * SHARDS
    job.check_one_file_per_shard(out)
    posts = len([r for r in job.emu.requests if r.method == "POST"])
    again = job.run()
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert [u["status"] for u in out["uploads"]] == ["reused"] * SHARDS
    job.check_one_file_per_shard(out)
    assert len([r for r in job.emu.requests if r.method == "POST"]) == posts


KILL_POINTS = [
    "lock-acquired",
    # The session's first ledger write records how the file was sharded; then each
    # shard takes two: pending, then uploaded.
    "ledger-replace#1",
    "ledger-replace#2",
    "ledger-replace#3",
    "ledger-replace#8",
    "ledger-written#4",
    "before-pending#1",
    "before-pending#4",
    "before-post#1",
    "before-post#3",
    "post-body#1",
    "post-body#5",
    "after-post#1",
    "after-post#2",
    "after-post#5",
    "after-record#3",
    "after-record#5",
]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_push_then_rerun_leaves_one_file_per_shard(job: Job, point: str) -> None:
    killed = job.run(FTPREP_TEST_KILL_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    job.ledger.entries()  # still a whole ledger: the old or the new version
    rerun = job.run()
    assert rerun.returncode == 0, rerun.stderr
    job.check_one_file_per_shard(json.loads(rerun.stdout))
    assert not list(job.ledger.path.parent.glob(".ledger.*.tmp"))


def test_killed_while_a_lost_response_is_being_checked(job: Job) -> None:
    # The server stores the first shard and drops the connection; ftprep dies right
    # when it starts to look for it. The rerun must adopt it, not send it again.
    job.emu.drop_next(times=1)
    killed = job.run(FTPREP_TEST_KILL_AT="ambiguous#1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(job.emu.files()) == 1
    rerun = job.run()
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert out["uploads"][0]["status"] == "reused"
    job.check_one_file_per_shard(out)


def test_injected_faults_end_with_one_file_per_shard(job: Job) -> None:
    job.emu.fail_next(429, method="POST", path="/v1/files", retry_after="1")
    job.emu.fail_next(503, method="POST", path="/v1/files", retry_after="0")
    job.emu.drop_next(times=2)
    job.emu.fail_next(502, method="POST", path="/v1/files")
    result = job.run("--jobs", "2")
    assert result.returncode == 0, result.stderr
    job.check_one_file_per_shard(json.loads(result.stdout))
    assert job.key not in result.stdout + result.stderr


CORRUPTIONS = {
    "truncated": lambda b: b[: len(b) // 2],
    "empty": lambda b: b"",
    "garbage": lambda b: os.urandom(len(b)),
    "unknown-version": lambda b: b.replace(b'"version": 1', b'"version": 7', 1),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_ledger_is_moved_aside_and_rebuilt_without_duplicates(job: Job, kind: str) -> None:
    assert job.run().returncode == 0
    posts = len([r for r in job.emu.requests if r.method == "POST"])
    path = job.ledger.path
    corrupt = CORRUPTIONS[kind](path.read_bytes())
    path.write_bytes(corrupt)
    rerun = job.run()
    assert rerun.returncode == 0, rerun.stderr
    assert "warning:" in rerun.stderr and "moved it to" in rerun.stderr
    [aside] = path.parent.glob("ledger.corrupt-*")
    assert aside.read_bytes() == corrupt
    out = json.loads(rerun.stdout)
    assert [u["status"] for u in out["uploads"]] == ["reused"] * SHARDS
    job.check_one_file_per_shard(out)
    assert len([r for r in job.emu.requests if r.method == "POST"]) == posts


def test_two_pushes_at_once_take_turns_and_upload_once(job: Job) -> None:
    pause = job.tmp / "pause"
    pause.mkdir()
    first = job.start(FTPREP_TEST_PAUSE_AT="lock-acquired", FTPREP_TEST_PAUSE_DIR=str(pause))
    second: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        while not list(pause.iterdir()):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # The first run holds the lock and is paused: the second must wait for it.
        second = job.start()
        time.sleep(0.5)
        assert second.poll() is None
        for flag in pause.iterdir():
            flag.unlink()
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = second.communicate(timeout=120)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for another ftprep run" in err2
    one, two = json.loads(out1), json.loads(out2)
    assert [u["status"] for u in two["uploads"]] == ["reused"] * SHARDS
    assert one["training_files"] == two["training_files"]
    job.check_one_file_per_shard(two)


def test_two_pushes_racing_without_a_pause_still_upload_once(job: Job) -> None:
    procs = [job.start("--jobs", "3"), job.start("--jobs", "3")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    results = [json.loads(out) for out, _ in outs]
    assert results[0]["training_files"] == results[1]["training_files"]
    job.check_one_file_per_shard(results[1])


def test_state_holds_no_key_and_is_kept_out_of_git(job: Job) -> None:
    result = job.run()
    assert result.returncode == 0, result.stderr
    assert job.key not in result.stdout + result.stderr
    state = job.ledger.path.parent
    for f in state.rglob("*"):
        if f.is_file():
            text = f.read_bytes()
            assert job.key.encode() not in text, f
    assert (state / ".gitignore").read_text() == "*\n"
    assert (state / "CACHEDIR.TAG").is_file()


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_ctrl_c_mid_push_exits_130_and_the_rerun_completes(job: Job, jobs: str) -> None:
    pause = job.tmp / "pause"
    pause.mkdir()
    proc = job.start(
        "--jobs", jobs, FTPREP_TEST_PAUSE_AT="before-post", FTPREP_TEST_PAUSE_DIR=str(pause)
    )
    try:
        deadline = time.monotonic() + 60
        while not list(pause.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        # Let paused uploads go on: they must stop at their first chunk, not finish.
        while proc.poll() is None and time.monotonic() < deadline:
            for flag in pause.iterdir():
                flag.unlink(missing_ok=True)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    rerun = job.run()
    assert rerun.returncode == 0, rerun.stderr
    job.check_one_file_per_shard(json.loads(rerun.stdout))
