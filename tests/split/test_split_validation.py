"""Carving a validation file: whole records, within the size asked, the rest into shards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import ftprep
from ftprep.errors import SplitError, UsageError

MakeFile = Callable[..., Path]


def records(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def test_a_size_carves_the_last_whole_records_and_the_rest_joins_back(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=200)
    raw = src.read_bytes()

    result = ftprep.split(src, max_size=5000, out_dir=tmp_path / "out", validation_size=700)

    assert result.validation is not None
    assert result.validation.path.name == "train.validation.jsonl"
    carved = result.validation.path.read_bytes()
    assert 0 < len(carved) <= 700
    # The tail of the file, cut on a line boundary, as large as the budget allows.
    assert raw.endswith(carved)
    head = raw[: -len(carved)]
    assert head.endswith(b"\n")
    assert len(records(head)[-1]) + len(carved) > 700
    assert b"".join(s.path.read_bytes() for s in result.shards) + carved == raw
    assert result.validation.lines == len(records(carved))
    assert all(s.bytes <= 5000 for s in result.shards)


def test_a_size_string_is_read_like_max_size(make_jsonl: MakeFile, tmp_path: Path) -> None:
    src = make_jsonl(count=200)

    result = ftprep.split(src, out_dir=tmp_path / "out", validation_size="1KB")

    assert result.validation is not None
    assert 1000 - 100 < result.validation.bytes <= 1000


@pytest.mark.parametrize("fraction", [0.05, "0.05", "5%"])
def test_a_fraction_is_of_the_file_size(
    fraction: float | str, make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=400)
    budget = int(src.stat().st_size * 0.05)

    result = ftprep.split(src, out_dir=tmp_path / "out", validation_size=fraction)

    assert result.validation is not None
    longest = max(len(r) for r in records(src.read_bytes()))
    assert budget - longest < result.validation.bytes <= budget
    assert result.warnings == []


def test_a_fraction_is_capped_at_mistrals_one_megabyte(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=30_000)  # about 3 MB: half of it would be 1.5 MB
    assert src.stat().st_size > 2_000_000

    result = ftprep.split(src, out_dir=tmp_path / "out", validation_size="50%")

    assert result.validation is not None
    assert 1_000_000 - 200 < result.validation.bytes <= 1_000_000
    assert result.warnings == []


def test_an_explicit_size_above_one_megabyte_is_obeyed_with_a_warning(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=30_000)

    result = ftprep.split(src, out_dir=tmp_path / "out", validation_size="1.5MB")

    assert result.validation is not None
    assert 1_000_000 < result.validation.bytes <= 1_500_000
    assert any("1.0 MB" in w and "validation" in w for w in result.warnings)


def test_a_budget_smaller_than_the_last_record_is_an_error_naming_it(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=10)

    with pytest.raises(SplitError, match=r"train.jsonl:10: the last record \(\d+ bytes\)"):
        ftprep.split(src, out_dir=tmp_path / "out", validation_size=20)
    assert not (tmp_path / "out").exists()


def test_a_budget_that_would_take_every_record_is_an_error(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=3)

    with pytest.raises(SplitError, match="leave none to train on"):
        ftprep.split(src, out_dir=tmp_path / "out", validation_size="1MB")


@pytest.mark.parametrize("bad", ["150%", "0%", 1.5, "0", "lots", "-3"])
def test_nonsense_validation_sizes_are_usage_errors(
    bad: str | float, make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=3)

    with pytest.raises(UsageError):
        ftprep.split(src, out_dir=tmp_path / "out", validation_size=bad)


def test_a_file_under_the_limit_still_gets_its_validation_carved(
    make_jsonl: MakeFile, tmp_path: Path
) -> None:
    src = make_jsonl(count=100)

    result = ftprep.split(src, out_dir=tmp_path / "out", validation_size=500)

    assert [s.path.name for s in result.shards] == ["train.part-0001-of-0001.jsonl"]
    assert result.validation is not None
    assert result.shards[0].lines + result.validation.lines == 100
