"""The corpus of example files: each case gets exactly the verdict its sidecar names."""

from __future__ import annotations

from typing import Any

import orjson

from ftprep.formats import detect_format, get_checker
from ftprep.rules import RULES
from ftprep.validator import validate

# Codes of the reader that a tiny static file cannot show: FT008 needs a file that
# changes while it is read, FT110 a line longer than the default limit, and FT120
# needs records repeated across a file (all three are covered in tests/validate).
READER_CODES_NOT_IN_CORPUS = {"FT008", "FT110", "FT120"}
# FT210 (the schema cannot be applied) needs a record nested deeper than the reader
# lets through; tests/formats/test_schemas.py covers it directly.
RECORD_CODES_NOT_IN_CORPUS = {"FT210"}

READER_CODES = {f"FT00{i}" for i in range(1, 10)} | {"FT010", "FT011"}
READER_CODES |= {f"FT1{i:02d}" for i in range(1, 14)} | {"FT120"}


def lines_of(data: bytes) -> list[bytes]:
    """Physical lines split on LF only, as JSON Lines defines them."""
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


def record_problems(case: Any) -> set[tuple[str, str]]:
    """What the record checker alone reports on every line that parses as an object."""
    found: set[tuple[str, str]] = set()
    for n, raw in enumerate(lines_of(case.path.read_bytes()), 1):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        schema = case.schema if case.schema != "auto" else detect_format(record)
        if not isinstance(record, dict) or schema is None:
            continue
        found |= {(str(n), p.code) for p in get_checker(schema).check(record)}
    return found


def test_corpus_records_get_exactly_the_expected_record_problems(record_case: Any) -> None:
    assert record_problems(record_case) == set(record_case.record_codes)


def _matches(expected: tuple[str, str], line: int | None, code: str) -> bool:
    where, want = expected
    if want != code:
        return False
    if where == "*":
        return True
    if where == "-":
        return line is None
    return line == int(where)


def test_corpus_through_validate(corpus_case: Any) -> None:
    kwargs: dict[str, Any] = {"schema": corpus_case.schema, "max_errors": 1000}
    if "max_size" in corpus_case.options:
        kwargs["max_size"] = int(corpus_case.options["max_size"])
    report = validate([str(corpus_case.path)], **kwargs)
    (file_report,) = report.files
    reported = [(p.line, p.code, p.severity) for p in file_report.problems]

    missing = [
        e for e in corpus_case.expected if not any(_matches(e, ln, c) for ln, c, _ in reported)
    ]
    assert not missing, f"expected but not reported: {sorted(missing)}; reported {reported}"
    unexpected = [
        (ln, c)
        for ln, c, sev in reported
        if not any(_matches(e, ln, c) for e in corpus_case.expected)
        and (c[:3] in ("FT2", "FT3", "FT4") or sev == "error")
    ]
    assert not unexpected, f"reported but not expected: {unexpected}"
    assert file_report.ok is (corpus_case.kind == "positive")


def test_corpus_shows_every_record_rule(corpus_cases: list[Any]) -> None:
    shown = {code for case in corpus_cases for _, code in case.expected}
    assert set(RULES) - RECORD_CODES_NOT_IN_CORPUS <= shown


def test_corpus_shows_every_reader_code_a_small_file_can_show(corpus_cases: list[Any]) -> None:
    shown = {code for case in corpus_cases for _, code in case.expected}
    assert READER_CODES - READER_CODES_NOT_IN_CORPUS <= shown


def test_corpus_positive_cases_expect_warnings_only(corpus_cases: list[Any]) -> None:
    for case in corpus_cases:
        if case.kind == "positive":
            errors = [c for _, c in case.expected if c in RULES and RULES[c].severity == "error"]
            assert not errors, case.id
        else:
            assert case.expected, f"{case.id}: a negative case needs a .expected sidecar"


def test_corpus_files_stay_tiny(corpus_cases: list[Any]) -> None:
    for case in corpus_cases:
        if case.path.is_file():
            assert case.path.stat().st_size <= 16_384, case.id
