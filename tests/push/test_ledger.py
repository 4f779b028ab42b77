"""The ledger on its own: durable writes, locking, corruption and lookups by content."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from ftprep.errors import LedgerError
from ftprep.ledger import Ledger, ensure_state_dir, split_upload_name, upload_name

URL = "http://127.0.0.1:9"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> tuple[str, int]:
    path.write_bytes(data)
    return _sha(data), len(data)


@dataclass(frozen=True)
class _ServerFile:
    id: str
    filename: str
    bytes: int | None


def _record(ledger: Ledger, sha: str, size: int, file_id: str, name: str = "x.jsonl") -> None:
    with ledger.session() as s:
        s.mark_uploaded(
            sha,
            size,
            purpose="fine-tune",
            base_url=URL,
            filename=upload_name(name, sha),
            file_id=file_id,
            path=name,
        )


def test_upload_name_carries_a_content_token_and_can_be_parsed_back() -> None:
    sha = _sha(b"x")
    name = upload_name("data/train.part-0002-of-0003.jsonl", sha)
    assert name == f"train.part-0002-of-0003.{sha[:12]}.jsonl"
    assert split_upload_name(name) == ("train.part-0002-of-0003.jsonl", sha[:12])
    assert split_upload_name("train.jsonl") is None
    assert upload_name("README", sha) == f"README.{sha[:12]}"


def test_pending_then_uploaded_is_what_a_reader_sees(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state" / "ledger")
    sha, size = _write(tmp_path / "a.jsonl", b'{"text": "a"}\n')
    with ledger.session() as s:
        s.mark_pending(
            sha, size, purpose="fine-tune", base_url=URL, filename="a.x.jsonl", path="a.jsonl"
        )
        [pending] = Ledger(ledger.path).entries()
        assert (pending.state, pending.file_id) == ("pending", None)
        s.mark_uploaded(
            sha,
            size,
            purpose="fine-tune",
            base_url=URL,
            filename="a.x.jsonl",
            file_id="file-1",
            path="a.jsonl",
        )
    [entry] = ledger.entries()
    assert (entry.state, entry.file_id, entry.sha256, entry.bytes) == (
        "uploaded",
        "file-1",
        sha,
        size,
    )
    assert ledger.file_ids(tmp_path / "a.jsonl") == ["file-1"]


def test_file_ids_follow_the_content_not_the_path(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    sha, size = _write(tmp_path / "a.jsonl", b'{"text": "a"}\n')
    _record(ledger, sha, size, "file-1")
    (tmp_path / "a.jsonl").rename(tmp_path / "renamed.jsonl")
    assert ledger.file_ids(tmp_path / "renamed.jsonl") == ["file-1"]
    (tmp_path / "renamed.jsonl").write_bytes(b'{"text": "b"}\n')
    assert ledger.file_ids(tmp_path / "renamed.jsonl") == []


def test_file_ids_of_a_sharded_file_are_its_shards_in_order(tmp_path: Path) -> None:
    parts = [b'{"text": "1"}\n', b'{"text": "22"}\n', b'{"text": "333"}\n']
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"".join(parts))
    ledger = Ledger(tmp_path / "ledger")
    # Recorded out of order on purpose: the order comes from the source record.
    for i in (2, 0, 1):
        _record(ledger, _sha(parts[i]), len(parts[i]), f"file-{i}")
    with ledger.session() as s:
        s.record_source(
            _sha(source.read_bytes()),
            source.stat().st_size,
            path=str(source),
            max_size=20,
            shards=[_sha(p) for p in parts],
        )
    assert ledger.file_ids(source) == ["file-0", "file-1", "file-2"]


def test_file_ids_of_a_sharded_file_need_every_shard(tmp_path: Path) -> None:
    parts = [b'{"text": "1"}\n', b'{"text": "2"}\n']
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"".join(parts))
    ledger = Ledger(tmp_path / "ledger")
    _record(ledger, _sha(parts[0]), len(parts[0]), "file-0")
    with ledger.session() as s:
        s.record_source(
            _sha(source.read_bytes()),
            source.stat().st_size,
            path=str(source),
            max_size=20,
            shards=[_sha(p) for p in parts],
        )
    assert ledger.file_ids(source) == []


def test_file_ids_prefer_the_most_recent_server(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    sha, size = _write(tmp_path / "a.jsonl", b"{}\n")
    for url, fid in (("http://127.0.0.1:1", "old"), ("http://127.0.0.1:2", "new")):
        with ledger.session() as s:
            s.mark_uploaded(
                sha, size, purpose="fine-tune", base_url=url, filename="a", file_id=fid, path=None
            )
    assert ledger.file_ids(tmp_path / "a.jsonl") == ["new"]
    assert ledger.file_ids(tmp_path / "a.jsonl", base_url="http://127.0.0.1:1/") == ["old"]


def test_missing_ledger_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    ledger = Ledger(tmp_path / "nothing" / "ledger")
    assert ledger.entries() == []
    assert ledger.file_ids(tmp_path / "a.jsonl") == []
    assert not (tmp_path / "nothing").exists()


def test_state_dir_gets_gitignore_and_cachedir_tag(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / ".ftprep" / "ledger")
    with ledger.session():
        pass
    assert (tmp_path / ".ftprep" / ".gitignore").read_text() == "*\n"
    tag = (tmp_path / ".ftprep" / "CACHEDIR.TAG").read_text()
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_an_existing_directory_of_the_user_gets_no_markers(tmp_path: Path) -> None:
    ensure_state_dir(tmp_path)
    assert not (tmp_path / ".gitignore").exists()
    assert not (tmp_path / "CACHEDIR.TAG").exists()


def test_ledger_file_is_private_and_no_temp_is_left(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    _record(ledger, _sha(b"a"), 1, "file-1")
    assert (ledger.path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger", "ledger.lock"]


def test_write_order_is_temp_fsync_replace_then_directory_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(tmp_path / "ledger")
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    with ledger.session() as s:
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        s.mark_pending(_sha(b"a"), 1, purpose="fine-tune", base_url=URL, filename="a", path=None)
    kinds = [k for k, _ in calls]
    assert kinds == ["fsync", "replace", "fsync"]
    tmp = calls[0][1]
    assert Path(tmp).parent == tmp_path and tmp != str(ledger.path)
    assert calls[1][1] == f"{tmp} -> {ledger.path}"
    assert calls[2][1] == str(tmp_path)


CORRUPT = {
    "truncated": b'{"format": "ftprep-ledger", "version": 1, "entries": [{"sha2',
    "empty": b"",
    "garbage": bytes(range(256)),
    "unknown-version": b'{"format": "ftprep-ledger", "version": 99, "entries": []}',
    "bad-entry": b'{"format": "ftprep-ledger", "version": 1, "entries": [{"state": "x"}]}',
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_ledger_is_refused_by_readers(tmp_path: Path, kind: str) -> None:
    ledger = Ledger(tmp_path / "ledger")
    ledger.path.write_bytes(CORRUPT[kind])
    with pytest.raises(LedgerError, match=r"unreadable.*rebuilds it"):
        ledger.entries()


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_ledger_is_moved_aside_with_a_warning_and_marked_for_rebuild(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger(tmp_path / "ledger")
    ledger.path.write_bytes(CORRUPT[kind])
    with caplog.at_level(logging.WARNING, logger="ftprep"), ledger.session() as s:
        assert s.needs_rebuild(purpose="fine-tune", base_url=URL)
        s.rebuild_from([], purpose="fine-tune", base_url=URL)
        assert not s.needs_rebuild(purpose="fine-tune", base_url=URL)
        assert s.needs_rebuild(purpose="fine-tune", base_url="http://127.0.0.1:2")
    [aside] = tmp_path.glob("ledger.corrupt-*")
    assert aside.read_bytes() == CORRUPT[kind]
    assert "moved it to" in caplog.text and str(aside) in caplog.text
    assert ledger.entries() == []


def test_rebuild_takes_in_ftprep_named_files_and_matches_them_by_token_and_size(
    tmp_path: Path,
) -> None:
    data = b'{"text": "hello"}\n'
    sha, size = _write(tmp_path / "a.jsonl", data)
    ledger = Ledger(tmp_path / "ledger")
    ledger.path.write_bytes(b"")
    listing = [
        _ServerFile("file-mine", upload_name("a.jsonl", sha), size),
        _ServerFile("file-other-size", upload_name("b.jsonl", sha), size + 1),
        _ServerFile("file-foreign", "notes.jsonl", size),
    ]
    with ledger.session() as s:
        assert s.rebuild_from(listing, purpose="fine-tune", base_url=URL) == 2
        found = s.find(sha, size, purpose="fine-tune", base_url=URL)
        assert found is not None and found.file_id == "file-mine" and found.sha256 is None
        s.touch(found, sha256=sha, path="a.jsonl")
    with ledger.session() as s:
        found = s.find(sha, size, purpose="fine-tune", base_url=URL)
        assert found is not None and (found.sha256, found.rebuilt) == (sha, False)
    assert ledger.file_ids(tmp_path / "a.jsonl") == ["file-mine"]


@pytest.mark.parametrize("name", ["ledger", "ledger.lock"])
def test_symlink_at_ledger_or_lock_path_is_refused_and_target_untouched(
    tmp_path: Path, name: str
) -> None:
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(b"precious\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / name).symlink_to(sentinel)
    with pytest.raises(LedgerError, match="symbolic link"), Ledger(state / "ledger").session():
        pass
    assert sentinel.read_bytes() == b"precious\n"


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kill_during_ledger_write_leaves_old_version_and_next_session_cleans_temp(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger")
    _record(ledger, _sha(b"old"), 3, "file-old")
    before = ledger.path.read_bytes()
    proc = _run_python(
        f"""
        from ftprep.ledger import Ledger
        with Ledger({str(ledger.path)!r}).session() as s:
            s.mark_pending({_sha(b"new")!r}, 3, purpose="fine-tune", base_url={URL!r},
                           filename="n", path=None)
        """,
        {"FTPREP_TEST_KILL_AT": "ledger-replace"},
    )
    assert proc.returncode == -9, proc.stderr
    assert ledger.path.read_bytes() == before
    assert list(tmp_path.glob(".ledger.*.tmp"))
    with ledger.session():
        pass
    assert not list(tmp_path.glob(".ledger.*.tmp"))
    assert [e.file_id for e in ledger.entries()] == ["file-old"]


def test_second_session_waits_for_the_first(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger", lock_timeout=0.2)
    pause = tmp_path / "pause"
    pause.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from ftprep.ledger import Ledger\nwith Ledger({str(ledger.path)!r}).session(): pass",
        ],
        env={
            **os.environ,
            "FTPREP_TEST_PAUSE_AT": "lock-acquired",
            "FTPREP_TEST_PAUSE_DIR": str(pause),
        },
    )
    try:
        deadline = time.monotonic() + 30
        while not list(pause.iterdir()):
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(LedgerError, match="in use by another ftprep run"), ledger.session():
            pass
        for flag in pause.iterdir():
            flag.unlink()
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()
    with ledger.session():
        pass


def test_ledger_document_is_versioned_json(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    _record(ledger, _sha(b"a"), 1, "file-1")
    doc = orjson.loads(ledger.path.read_bytes())
    assert (doc["format"], doc["version"]) == ("ftprep-ledger", 1)
    assert set(doc["entries"][0]) >= {"sha256", "bytes", "purpose", "base_url", "file_id"}


def test_after_a_rebuild_file_ids_of_a_sharded_file_come_from_its_shard_names(
    tmp_path: Path,
) -> None:
    parts = [b'{"text": "one"}\n', b'{"text": "two"}\n', b'{"text": "three"}\n']
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"".join(parts))
    names = [f"big.part-{i:04}-of-0003.jsonl" for i in (1, 2, 3)]
    listing = [
        _ServerFile(f"id-{i}", upload_name(n, _sha(p)), len(p))
        for i, (n, p) in enumerate(zip(names, parts, strict=True))
    ]
    # Sets from older versions of the file: the same names, other content.
    stale = [b'{"text": "OLD"}\n', parts[1], b'{"text": "OLD3"}\n']
    listing += [
        _ServerFile(f"old-{i}", upload_name(n, _sha(p)), len(p))
        for i, (n, p) in enumerate(zip(names, stale, strict=True))
    ]
    ledger = Ledger(tmp_path / "ledger")
    ledger.path.write_bytes(b"garbage")
    with ledger.session() as s:
        s.rebuild_from(listing[::-1], purpose="fine-tune", base_url=URL)
    ids = ledger.file_ids(source)
    # Part 2 has the same bytes in both sets: either copy is a right answer.
    assert (ids[0], ids[1] in {"id-1", "old-1"}, ids[2]) == ("id-0", True, "id-2")
    source.write_bytes(b"".join(parts[:2]) + b'{"text": "thre3"}\n')
    assert ledger.file_ids(source) == []
