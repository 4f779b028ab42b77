"""Where the cuts go: byte-exact round trip, the limit, line boundaries, balance, fewest shards."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ftprep
from ftprep import splitter

# A line's content: any bytes but a newline (a lone \r belongs to its line).
content = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b""))
line = st.tuples(content, st.sampled_from([b"\n", b"\r\n"])).map(lambda t: t[0] + t[1])


MakeFile = Callable[..., Path]


def split_lf(data: bytes) -> list[bytes]:
    r"""Lines as JSONL sees them: only ``\n`` ends a line (``\r`` stays in the line)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    return [*out, parts[-1]] if parts[-1] else out


def fewest_shards(lines: list[bytes], limit: int) -> int:
    """Greedy packing of whole lines: the smallest number of shards of at most ``limit``."""
    count, used = 1, 0
    for ln in lines:
        if used + len(ln) > limit:
            count, used = count + 1, 0
        used += len(ln)
    return count


def check_shards(result: ftprep.SplitResult, limit: int) -> list[bytes]:
    shards = [s.path.read_bytes() for s in result.shards]
    k = len(shards)
    for i, (shard, info) in enumerate(zip(shards, result.shards, strict=True), start=1):
        assert info.path.name.endswith(f".part-{i:04d}-of-{k:04d}.jsonl")
        assert 0 < len(shard) <= limit
        assert info.bytes == len(shard)
        assert info.sha256 == hashlib.sha256(shard).hexdigest()
        assert info.lines == shard.count(b"\n") + (not shard.endswith(b"\n"))
    # Every boundary between two shards falls right after a newline.
    assert all(shard.endswith(b"\n") for shard in shards[:-1])
    return shards


@pytest.mark.parametrize("engine", ["one thread", "threads"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line, min_size=1, max_size=60), final_newline=st.booleans(), data=st.data())
def test_shards_join_back_byte_for_byte_each_under_the_limit_and_balanced(
    engine: str, lines: list[bytes], final_newline: bool, data: st.DataObject
) -> None:
    raw = b"".join(lines)
    if not final_newline:
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    assume(raw)
    longest = max(len(ln) for ln in split_lf(raw))
    limit = data.draw(
        st.one_of(
            st.integers(longest, longest * 3), st.integers(longest, max(longest, len(raw) + 3))
        ),
        label="limit",
    )
    parallel_min = 0 if engine == "threads" else splitter._PARALLEL_MIN
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(splitter, "_PARALLEL_MIN", parallel_min),
    ):
        src = Path(tmp, "in.jsonl")
        src.write_bytes(raw)
        first = ftprep.split(src, max_size=limit, out_dir=Path(tmp, "a"))
        shards = check_shards(first, limit)

        assert b"".join(shards) == raw
        assert len(shards) == fewest_shards(split_lf(raw), limit)
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 2 * longest

        again = ftprep.split(src, max_size=limit, out_dir=Path(tmp, "a"), force=True)
        assert [s.path for s in again.shards] == [s.path for s in first.shards]
        assert [s.sha256 for s in again.shards] == [s.sha256 for s in first.shards]


def test_a_file_a_little_over_four_limits_gives_five_even_shards_not_four_and_a_crumb(
    tmp_path: Path,
) -> None:
    src = tmp_path / "big.jsonl"
    src.write_bytes(b"".join(b'{"n": %05d, "pad": "%s"}\n' % (i, b"x" * 76) for i in range(41)))
    assert len(src.read_bytes()) == 41 * 100

    result = ftprep.split(src, max_size=1000, out_dir=tmp_path / "out")

    sizes = [s.bytes for s in result.shards]
    assert len(sizes) == 5
    assert max(sizes) - min(sizes) <= 100  # one record: the best whole records allow
    assert b"".join(s.path.read_bytes() for s in result.shards) == src.read_bytes()


def test_a_file_under_the_limit_gives_one_shard_named_one_of_one(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl("small.jsonl", count=5)

    result = ftprep.split(src, out_dir=tmp_path / "out")

    assert [s.path.name for s in result.shards] == ["small.part-0001-of-0001.jsonl"]
    assert result.shards[0].path.read_bytes() == src.read_bytes()
    assert result.shards[0].lines == 5
    assert result.validation is None


def test_size_strings_are_accepted_for_the_limit(make_jsonl: MakeFile, tmp_path: Path) -> None:
    src = make_jsonl(count=200)  # about 20 KB
    size = src.stat().st_size

    result = ftprep.split(src, max_size="8KB", out_dir=tmp_path / "out")

    assert len(result.shards) == fewest_shards(split_lf(src.read_bytes()), 8000)
    assert all(s.bytes <= 8000 for s in result.shards)
    assert sum(s.bytes for s in result.shards) == size


def test_a_large_file_goes_through_the_parallel_copy_intact(tmp_path: Path) -> None:
    # Over the one-thread threshold, so the kernel copy, the hashing thread and the
    # line counting all run together.
    block = b"".join(b'{"text": "%d %s"}\r\n' % (i, b"y" * (i % 97)) for i in range(5000))
    src = tmp_path / "large.jsonl"
    with src.open("wb") as fh:
        for _ in range(80):
            fh.write(block)
        fh.write(b'{"text": "last, no newline"}')
    raw = src.read_bytes()
    assert len(raw) // 3 > splitter._PARALLEL_MIN

    result = ftprep.split(src, max_size=len(raw) // 3 + 1000, out_dir=tmp_path / "out")

    shards = check_shards(result, len(raw) // 3 + 1000)
    assert len(shards) == 3
    assert b"".join(shards) == raw
    assert sum(s.lines for s in result.shards) == raw.count(b"\n") + 1


def test_shard_numbers_widen_past_four_digits_so_names_still_sort() -> None:
    names = splitter._shard_names("x", 12000)
    assert names[0] == "x.part-00001-of-12000.jsonl"
    assert names == sorted(names)


def test_progress_is_told_every_byte_once(make_jsonl: MakeFile, tmp_path: Path) -> None:
    src = make_jsonl(count=300)
    seen: list[int] = []

    ftprep.split(src, max_size=5000, out_dir=tmp_path / "out", progress=seen.append)

    assert sum(seen) == src.stat().st_size


@pytest.mark.parametrize("size", [2_000, 40 << 20])  # the one-thread and the threaded copy
def test_without_checksums_the_shards_are_the_same_bytes_and_carry_no_digest(
    tmp_path: Path, size: int
) -> None:
    record = b'{"text": "' + b"x" * 90 + b'"}\n'
    source = tmp_path / "in.jsonl"
    source.write_bytes(record * (size // len(record)))
    with_sums = ftprep.split(source, max_size=size // 3, out_dir=tmp_path / "a")
    without = ftprep.split(source, max_size=size // 3, out_dir=tmp_path / "b", checksums=False)
    assert [s.sha256 for s in without.shards] == [None] * len(with_sums.shards)
    for a, b in zip(with_sums.shards, without.shards, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes()
        assert (a.bytes, a.lines) == (b.bytes, b.lines)
        assert a.sha256 == hashlib.sha256(b.path.read_bytes()).hexdigest()
    assert without.to_dict()["shards"][0]["sha256"] is None
