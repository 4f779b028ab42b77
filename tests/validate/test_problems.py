"""Each whole-file and line problem: found where it is, named plainly, with its fix."""

from __future__ import annotations

from array import array

import pytest

from ftprep import validator
from ftprep.problems import MAX_MESSAGE_CHARS, Problem
from ftprep.validator import MAX_DEPTH, _find_duplicates, _Result, validate_bytes

from .conftest import chat

PRETRAIN = b'{"text": "A chain wears by stretching."}'


def found(data: bytes, **kw: object) -> list[tuple[int | None, int | None, str]]:
    report = validate_bytes(data, **kw)  # type: ignore[arg-type]
    return [(p.line, p.column, p.code) for p in report.problems]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [(None, None, "FT001")]),
        (b"\n \n\t\r\n", [(None, None, "FT001")]),
        (b"\xef\xbb\xbf" + PRETRAIN + b"\n{x}\n", [(1, None, "FT002"), (2, 2, "FT101")]),
        ("{}\n".encode("utf-16"), [(None, None, "FT003")]),
        ("{}\n".encode("utf-32-le"), [(None, None, "FT003")]),
        (b"\x1f\x8b\x08\x00\x00\x00", [(None, None, "FT004")]),
        (b"PAR1\x15\x04", [(None, None, "FT004")]),
        (PRETRAIN + b"\n" + b"\x00" * 64, [(2, 1, "FT005")]),
        (b'[\n  {"text": "a"},\n  {"text": "b"}\n]\n', [(1, None, "FT006")]),
        (b'{\n  "text": "a"\n}\n', [(1, None, "FT006")]),
        (PRETRAIN + b"\r" + PRETRAIN + b"\r", [(None, None, "FT009")]),
        (b'{"what": 1}\n', [(None, None, "FT010")]),
    ],
    ids=[
        "empty",
        "only-blank",
        "bom",
        "utf16",
        "utf32",
        "gzip",
        "parquet",
        "nul-padding",
        "json-array",
        "pretty-object",
        "bare-cr",
        "unknown-format",
    ],
)
def test_whole_file_problems(
    data: bytes, expected: list[tuple[int | None, int | None, str]]
) -> None:
    assert found(data) == expected


@pytest.mark.parametrize(
    ("line", "column", "code", "hint"),
    [
        (b'{"text": "a",}', 13, "FT101", "trailing comma"),
        (b"{'text': 'a'}", 2, "FT101", "single quotes"),
        (b'{"text": "a", "ok": True}', 21, "FT101", "True is Python"),
        (b'{"text": "a", "n": None}', 20, "FT101", "None is Python"),
        (b'{"text": "a", "n": NaN}', 20, "FT101", "NaN and Infinity"),
        (b'{"text": "a", "n": -Infinity}', 21, "FT101", "NaN and Infinity"),
        (b'{"text": "a"} // note', 15, "FT101", "no comments"),
        (b'{"text": "a", "n": 07}', 20, "FT101", "start with 0"),
        (b'{"text": "a"}{"text": "b"}', 14, "FT102", "two records on one line"),
        (b'{"text": "caf\xe9"}', 14, "FT104", "byte offset 54 of the file"),
        (b'{"text": "\xed\xa0\x80"}', 11, "FT105", "CESU-8"),
        (b'{"text": "\\ud83d"}', 11, "FT105", "lone UTF-16 surrogate"),
        (b'{"text": "a\tb"}', 12, "FT106", "escape it"),
        (b'{"text": "a\x00b"}', 12, "FT106", "escape it"),
        (b'{"text": "a", "x": ' + b"[" * 70 + b"]" * 70 + b"}", None, "FT107", "nested"),
        (b'{"text": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", None, "FT107", "nested"),
        (b'["text", "a"]', 1, "FT108", "array"),
        (b"null", 1, "FT108", "null"),
        (b'\xef\xbb\xbf{"text": "a"}', 1, "FT111", "cat"),
        (b'{"text": "a", "text": "b"}', 15, "FT112", "'text'"),
        (b'{"text": "a", "n": 1e400}', 20, "FT113", "out of range"),
        (b'{"text": "a", "n": ' + b"9" * 5000 + b"}", 20, "FT113", "out of range"),
    ],
)
def test_line_problems_carry_line_column_code_and_hint(
    line: bytes, column: int | None, code: str, hint: str
) -> None:
    report = validate_bytes(PRETRAIN + b"\n" + line + b"\n", schema="pretrain", ignore=["FT4"])
    problems = [p for p in report.problems if p.code[:3] in ("FT1", "FT0")]
    assert [(p.line, p.column, p.code) for p in problems] == [(2, column, code)]
    assert hint in problems[0].message


def test_truncated_last_line_is_ft103_only_at_the_end_of_the_file() -> None:
    cut = b'{"messages": [{"role": "user", "content": "hi'
    assert found(chat() + b"\n" + cut) == [(2, 46, "FT103")]
    middle = found(chat() + b"\n" + cut + b"\n" + chat("x") + b"\n")
    assert [(line, code) for line, _, code in middle] == [(2, "FT101")]


def test_blank_line_is_ft109_and_a_trailing_blank_line_too() -> None:
    assert found(chat() + b"\n\n" + chat("x") + b"\n\n") == [(2, None, "FT109"), (4, None, "FT109")]


def test_integers_past_64_bits_are_accepted() -> None:
    assert found(b'{"text": "a", "n": 18446744073709551616}\n', ignore=["FT408"]) == []


def test_duplicate_key_is_found_on_the_fast_path_too() -> None:
    # A record the format's quick check accepts (the last "content" wins) still gets FT112.
    line = (
        b'{"messages": [{"role": "user", "content": "x", "content": "hi"}, '
        b'{"role": "assistant", "content": "yo"}]}'
    )
    report = validate_bytes(line + b"\n", schema="chat")
    assert [(p.code, p.column) for p in report.problems] == [("FT112", 48)]
    assert "'content'" in report.problems[0].message


def test_nesting_limit_is_documented_and_just_under_it_passes() -> None:
    ok = b'{"text": "a", "x": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}\n"
    deep = b'{"text": "a", "x": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}\n"
    assert [c for _, _, c in found(ok, ignore=["FT4"])] == []
    assert [c for _, _, c in found(deep, ignore=["FT4"])] == ["FT107"]


def test_messages_stay_short_whatever_the_input() -> None:
    huge = b"x" * 10_000_000
    lines = [
        b'{"text": "' + huge + b'",}',
        b"{" + huge + b"}",
        b'{"' + huge + b'": 1, "' + huge + b'": 2, "text": "a"}',
        b'{"messages": [{"role": "' + huge + b'", "content": "a"}]}',
    ]
    report = validate_bytes(b"\n".join(lines) + b"\n", schema="chat")
    assert report.problems
    for p in report.problems:
        assert len(p.message) <= MAX_MESSAGE_CHARS
        assert len(p.message.encode()) < 1024


def test_duplicate_records_name_the_first_copy() -> None:
    data = chat() + b"\n" + chat("b") + b"\n" + chat() + b"\r\n" + chat() + b"\n"
    report = validate_bytes(data)
    dups = [(p.line, p.code, p.severity) for p in report.problems]
    assert dups == [(3, "FT120", "warning"), (4, "FT120", "warning")]
    assert all("duplicate of line 1" in p.message for p in report.problems)
    assert report.ok


def _result(fps: list[int], lines: list[int], offsets: list[int]) -> _Result:
    r = _Result()
    r.fingerprints = array("Q", fps)
    r.record_lines = array("Q", lines)
    r.record_offsets = array("Q", offsets)
    return r


def test_equal_fingerprints_with_different_bytes_are_not_duplicates() -> None:
    # Three records share one fingerprint (a hash collision); only 2 and 3 are equal.
    content = {0: b"aaaa", 10: b"bbbb", 20: b"bbbb", 30: b"aaab"}
    fp = (0xDEADBEEF << 32) | 4
    results = [_result([fp, fp], [1, 2], [0, 10]), _result([fp, fp], [1, 2], [20, 30])]
    dups = _find_duplicates(results, [0, 2], lambda off, n: content[off][:n])
    assert [(p.line, p.message.split(":")[0]) for p in dups] == [(3, "exact duplicate of line 2")]


def test_duplicates_are_the_same_when_fingerprints_are_counted_in_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Records on lines 1..60 in two ranges; every fifth after the first repeats line 1.
    lines = [b"r%02d" % (i % 5 if i % 5 == 0 and i else i) for i in range(60)]
    offsets = [10 * i for i in range(60)]
    fps = [(hash(line) & 0xFFFFFFFF) << 32 | len(line) for line in lines]
    by_offset = dict(zip(offsets, lines, strict=True))
    results = [
        _result(fps[:25], list(range(1, 26)), offsets[:25]),
        _result(fps[25:], list(range(1, 36)), offsets[25:]),
    ]

    def found() -> list[tuple[int | None, str]]:
        dups = _find_duplicates(results, [0, 25], lambda off, n: by_offset[off][:n])
        return sorted((p.line, p.message.split(":")[0]) for p in dups)

    whole = found()
    assert len(whole) == 11 and whole[0] == (6, "exact duplicate of line 1")
    assert (26, "exact duplicate of line 1") in whole  # the second range's first line
    monkeypatch.setattr(validator, "_DUP_SLICE", 7)  # 60 records: nine slices
    assert found() == whole


def test_problems_are_values_never_exceptions() -> None:
    p = Problem(severity="error", code="FT101", message="m" * 5000, line=1)
    assert len(p.message) <= MAX_MESSAGE_CHARS
