"""Shuffling: a deterministic permutation of the input's lines, never loaded whole."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ftprep
from ftprep.errors import UsageError

MakeFile = Callable[..., Path]


def records(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def joined(result: ftprep.SplitResult) -> bytes:
    return b"".join(s.path.read_bytes() for s in result.shards)


def test_the_same_seed_gives_the_same_bytes(make_jsonl: MakeFile, tmp_path: Path) -> None:
    src = make_jsonl(count=200)

    a = ftprep.split(src, max_size=4000, out_dir=tmp_path / "a", shuffle=True, seed=42)
    b = ftprep.split(src, max_size=4000, out_dir=tmp_path / "b", shuffle=True, seed=42)

    assert [s.path.name for s in a.shards] == [s.path.name for s in b.shards]
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    assert a.seed == 42


def test_a_different_seed_gives_a_different_order_of_the_same_lines(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=200)

    a = ftprep.split(src, max_size=4000, out_dir=tmp_path / "a", shuffle=True, seed=1)
    b = ftprep.split(src, max_size=4000, out_dir=tmp_path / "b", shuffle=True, seed=2)

    assert joined(a) != joined(b)
    assert joined(a) != src.read_bytes()
    assert Counter(records(joined(a))) == Counter(records(src.read_bytes()))
    assert Counter(records(joined(b))) == Counter(records(src.read_bytes()))


def test_without_a_seed_the_seed_drawn_is_reported_and_repeats_the_run(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=100)

    first = ftprep.split(src, max_size=4000, out_dir=tmp_path / "a", shuffle=True)
    assert first.seed is not None
    again = ftprep.split(src, max_size=4000, out_dir=tmp_path / "b", shuffle=True, seed=first.seed)

    assert joined(again) == joined(first)


def test_a_last_line_without_newline_gets_one_so_records_never_merge(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=50, eol=b"\r\n", final_newline=False)
    raw = src.read_bytes()
    assert not raw.endswith(b"\n")

    result = ftprep.split(src, max_size=1500, out_dir=tmp_path / "out", shuffle=True, seed=3)

    out = joined(result)
    assert len(out) == len(raw) + 1
    expected = Counter(records(raw + b"\n"))
    assert Counter(records(out)) == expected
    assert all(r.endswith(b"\r\n") or r == records(raw)[-1] + b"\n" for r in records(out))
    assert sum(s.lines for s in result.shards) == 50


def test_the_validation_carve_takes_the_first_records_of_the_shuffled_order(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=200)
    plain = ftprep.split(src, max_size=4000, out_dir=tmp_path / "a", shuffle=True, seed=9)
    order = joined(plain)

    carved = ftprep.split(
        src, max_size=4000, out_dir=tmp_path / "b", shuffle=True, seed=9, validation_size=900
    )

    assert carved.validation is not None
    validation = carved.validation.path.read_bytes()
    assert 0 < len(validation) <= 900
    assert order.startswith(validation)
    assert validation + joined(carved) == order


def test_a_seed_without_shuffle_is_refused(make_jsonl: MakeFile, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="shuffl"):
        ftprep.split(make_jsonl(count=3), out_dir=tmp_path / "out", seed=4)


def test_progress_counts_the_indexing_pass_and_the_copy(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=300)
    seen: list[int] = []

    ftprep.split(src, out_dir=tmp_path / "out", shuffle=True, seed=1, progress=seen.append)

    assert sum(seen) == 2 * src.stat().st_size


content = st.binary(max_size=20).map(lambda b: b.replace(b"\n", b""))


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(content, min_size=1, max_size=40),
    final_newline=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    slack=st.integers(0, 60),
)
def test_shuffled_shards_are_a_permutation_under_the_limit(
    lines: list[bytes], final_newline: bool, seed: int, slack: int
) -> None:
    raw = b"\n".join(lines) + (b"\n" if final_newline else b"")
    if not raw:
        raw = b"\n"
    terminated = raw if raw.endswith(b"\n") else raw + b"\n"
    longest = max(len(r) for r in records(terminated))
    limit = longest + slack
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "in.jsonl")
        src.write_bytes(raw)

        result = ftprep.split(src, max_size=limit, out_dir=Path(tmp, "o"), shuffle=True, seed=seed)

        shards = [s.path.read_bytes() for s in result.shards]
        assert Counter(records(b"".join(shards))) == Counter(records(terminated))
        assert all(0 < len(s) <= limit and s.endswith(b"\n") for s in shards)
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 2 * longest
