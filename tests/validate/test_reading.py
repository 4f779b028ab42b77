"""Splitting lines the way JSON Lines defines them, and files that cannot be read as such."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftprep
from ftprep.reader import iter_lines
from ftprep.validator import validate_bytes

from .conftest import chat


def codes(data: bytes, **kw: object) -> list[tuple[int | None, str]]:
    report = validate_bytes(data, **kw)  # type: ignore[arg-type]
    return [(p.line, p.code) for p in report.problems]


def reference_lines(data: bytes, limit: int) -> list[tuple[int, bytes | int, bool]]:
    out: list[tuple[int, bytes | int, bool]] = []
    offset = 0
    parts = data.split(b"\n")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and not part:
            break
        out.append((offset, part if len(part) <= limit else len(part), not last))
        offset += len(part) + 1
    return out


@given(
    data=st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"\n")),
    limit=st.integers(1, 40),
    chunk=st.integers(1, 16),
)
def test_lines_match_a_plain_split_on_newline_whatever_the_chunking(
    data: bytes, limit: int, chunk: int
) -> None:
    got = list(iter_lines(io.BytesIO(data), max_line_bytes=limit, chunk_size=chunk))
    assert got == reference_lines(data, limit)


@pytest.mark.parametrize("inside", ["a\u2028b", "a\u2029b", "a\u0085b", "a\x1cb\x1db"])
def test_unicode_line_separators_inside_a_string_never_split_a_record(inside: str) -> None:
    raw = chat(user=inside)
    assert inside.encode() in raw or b"\\u001c" in raw  # the separator is in the line as is
    data = chat() + b"\n" + raw + b"\n" + chat("last one") + b"\n"
    report = validate_bytes(data)
    assert (report.lines, report.records, report.problems) == (3, 3, [])


def test_a_raw_cr_inside_a_string_is_one_bad_line_not_two() -> None:
    data = chat() + b"\n" + chat(user="a\rb").replace(b"\\r", b"\r") + b"\n" + chat("c") + b"\n"
    assert data.count(b"\r") == 1
    report = validate_bytes(data)
    assert report.lines == 3
    assert [(p.line, p.code) for p in report.problems] == [(2, "FT106")]


def test_a_cr_between_tokens_is_whitespace_inside_one_record() -> None:
    data = (
        b'{"messages":\r[{"role": "user", "content": "hi"},\r'
        b'{"role": "assistant", "content": "yo"}]}\n'
    )
    report = validate_bytes(data)
    assert (report.lines, report.records, report.problems) == (1, 1, [])


def test_crlf_and_mixed_line_ends_are_accepted() -> None:
    data = chat() + b"\r\n" + chat("b") + b"\n" + chat("c") + b"\r\n"
    report = validate_bytes(data)
    assert (report.lines, report.records, report.problems) == (3, 3, [])


def test_blank_lines_count_in_line_numbers() -> None:
    data = chat() + b"\n\n   \n" + b"{bad}\n" + chat("x") + b"\n\n"
    assert codes(data) == [(2, "FT109"), (3, "FT109"), (4, "FT101"), (6, "FT109")]


def test_no_final_newline_is_fine_and_adds_no_line() -> None:
    report = validate_bytes(chat() + b"\n" + chat("x"))
    assert (report.lines, report.records, report.problems) == (2, 2, [])


def test_an_over_long_line_is_reported_and_skipped_and_the_next_line_checked() -> None:
    long = chat("x" * 5000)
    data = chat() + b"\n" + long + b"\n" + b"{oops}\n"
    report = validate_bytes(data, max_line_bytes=1000)
    assert [(p.line, p.code) for p in report.problems] == [(2, "FT110"), (3, "FT101")]
    assert str(len(long)) in report.problems[0].message
    assert report.lines == 3


def test_over_long_lines_are_never_held_whole() -> None:
    # 8 MiB in one line, read in 64 KiB chunks: no yielded object is larger than a chunk.
    data = io.BytesIO(b"x" * (8 * 2**20) + b"\n{}\n")
    got = list(iter_lines(data, max_line_bytes=2**16, chunk_size=2**16))
    assert got == [(0, 8 * 2**20, True), (8 * 2**20 + 1, b"{}", True)]


def test_file_that_changes_while_read_gets_ft008(tmp_path: Path) -> None:
    path = tmp_path / "growing.jsonl"
    path.write_bytes(chat() + b"\n")
    calls: list[int] = []

    def grow(n: int) -> None:
        # Called after each chunk is read: the first call appends like a live writer.
        calls.append(n)
        if len(calls) == 1:
            with open(path, "ab") as fh:
                fh.write(chat("more") + b"\n")

    report = ftprep.validate([path], progress=grow)
    assert [p.code for p in report.files[0].problems] == ["FT008"]
    assert not report.ok


def test_a_file_replaced_while_read_gets_ft008(tmp_path: Path) -> None:
    path = tmp_path / "swapped.jsonl"
    path.write_bytes(chat() + b"\n")

    def swap(n: int) -> None:
        other = tmp_path / "new.jsonl"
        other.write_bytes(chat() + b"\n")
        os.replace(other, path)

    report = ftprep.validate([path], progress=swap)
    assert [p.code for p in report.files[0].problems] == ["FT008"]


def test_an_unchanged_file_calls_progress_with_all_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "still.jsonl"
    path.write_bytes(chat() + b"\n" + chat("x") + b"\n")
    seen: list[int] = []
    report = ftprep.validate([path], progress=seen.append)
    assert report.ok
    assert sum(seen) == path.stat().st_size


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_ft011(tmp_path: Path) -> None:
    path = tmp_path / "secret.jsonl"
    path.write_bytes(chat() + b"\n")
    path.chmod(0)
    report = ftprep.validate([path])
    assert [p.code for p in report.files[0].problems] == ["FT011"]
    assert "permission denied" in report.files[0].problems[0].message


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "real.jsonl").write_bytes(chat() + b"\n")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "real.jsonl")
    assert ftprep.validate([tmp_path / "link.jsonl"]).ok
