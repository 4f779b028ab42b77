"""The C byte passes (ftprep._speedups) give the pure-Python answers, and the
validator reports the same with either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ftprep import _native

from .conftest import chat, tool_chat

try:
    from ftprep import _speedups
except ImportError:  # installed without a C compiler: the Python versions run alone
    _speedups = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_speedups is None, reason="ftprep._speedups was not built")
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "example-files"


def utf8_ok(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


# Bytes that reach every branch of a UTF-8 check: lead bytes of each length and the
# edges of their second-byte ranges, continuation bytes, ':' and '\r'.
EDGY = st.sampled_from(
    [
        *(0x00, 0x3A, 0x41, 0x0D, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2),
        *(0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF),
    ]
)
LINES = st.one_of(
    st.binary(max_size=200),
    st.lists(EDGY, max_size=80).map(bytes),
    st.text(max_size=120).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@needs_c
@settings(max_examples=3000, deadline=None)
@given(LINES, st.binary(max_size=40))
@example(b"\xed\xa0\x80", b"")  # a surrogate
@example(b"\xf4\x90\x80\x80", b"")  # above U+10FFFF
@example(b"\xe0\x9f\xbf", b"")  # overlong
@example(b"\xc0\xaf", b"")  # overlong '/'
@example("é".encode()[:1], b"")  # cut inside a character
@example(b'{"a": "x:y"}\r', b"")
def test_scan_matches_the_python_version(line: bytes, prefix: bytes) -> None:
    for data in (line, prefix + line, b"a" * 29 + line, line + prefix):
        ours = _speedups.scan(data)
        theirs = _native._py_scan(data)
        assert (ours is None) == (theirs is None) == (not utf8_ok(data))
        if ours is not None and theirs is not None:
            assert ours[0] == theirs[0]  # the colon count
            # the fingerprint: a hash over the length of the line without its "\r"
            assert ours[1] & 0xFFFFFFFF == theirs[1] & 0xFFFFFFFF
            assert ours[1] == _speedups.fingerprint(data.removesuffix(b"\r"))
        assert _speedups.colons(data) == data.count(b":")
        assert _speedups.string_facts(data) == _native._py_string_facts(data)


@needs_c
def test_every_two_byte_sequence_is_judged_as_python_judges_it() -> None:
    for first in range(256):
        for second in range(256):
            pair = bytes([first, second])
            for data in (pair, b"x" * 13 + pair + b"y" * 17, b"z" * 30 + pair):
                assert (_speedups.scan(data) is None) == (not utf8_ok(data)), data


@needs_c
def test_every_cut_of_valid_text_is_judged_as_python_judges_it() -> None:
    text = ("ab: é 東京 🙂 «q» \u2028 " * 4).encode()
    for end in range(len(text) + 1):
        for start in range(9):
            data = text[start:end]
            assert (_speedups.scan(data) is None) == (not utf8_ok(data)), data


@needs_c
def test_fingerprints_tell_apart_lines_that_differ_in_one_byte() -> None:
    line = chat("a question of some length " * 5, "an answer")
    seen = {_speedups.fingerprint(line)}
    for i in range(len(line)):
        changed = line[:i] + bytes([line[i] ^ 1]) + line[i + 1 :]
        seen.add(_speedups.fingerprint(changed))
    assert len(seen) == len(line) + 1
    assert _speedups.fingerprint(line) == _speedups.fingerprint(bytes(line))
    assert _speedups.fingerprint(memoryview(line)) == _speedups.fingerprint(line)


def test_the_python_versions_run_when_the_c_module_is_switched_off() -> None:
    code = "import ftprep._native as n; print(n.NATIVE, n.scan.__module__)"
    env = {**os.environ, "FTPREP_NO_SPEEDUPS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "ftprep._native"]


def _dataset() -> bytes:
    lines = []
    for i in range(400):
        lines.append(chat(f"question {i}: why? «{i % 7}» 東京 🙂", f"answer: {i % 50}"))
        if i % 9 == 0:
            lines.append(tool_chat(i))
        if i % 31 == 0:
            lines.append(b'{"messages": [{"role": "user", "content": "caf\xe9"}]}')  # not UTF-8
        if i % 37 == 0:
            lines.append(b"\xef\xbb\xbf" + chat("question 3: why? «3» 東京 🙂", "answer: 3"))
    data = b"\n".join(lines) + b"\n"
    # CRLF twins of LF records: duplicates all the same.
    return data + chat("question 5: why? «5» 東京 🙂", "answer: 5") + b"\r\n"


def _validate_json(paths: list[str], *, pure: bool, cwd: Path) -> object:
    env = {k: v for k, v in os.environ.items() if k != "FTPREP_NO_SPEEDUPS"}
    if pure:
        env["FTPREP_NO_SPEEDUPS"] = "1"
    code = (
        "import json, sys, ftprep\n"
        "r = ftprep.validate(sys.argv[1:], jobs=2, parallel_threshold=4096)\n"
        "print(json.dumps(r.to_dict()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *paths],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.timeout(300)
def test_the_validator_reports_the_same_with_or_without_the_c_module(tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(_dataset())
    cases = sorted(
        str(p.relative_to(ROOT))
        for p in CORPUS.rglob("*.jsonl")
        if p.is_file() and not p.is_symlink()
    )
    paths = [str(data), *cases]
    pure = _validate_json(paths, pure=True, cwd=ROOT)
    native = _validate_json(paths, pure=False, cwd=ROOT)
    assert native == pure
    mixed = pure["files"][0]  # type: ignore[index]
    codes = {p["code"] for p in mixed["problems"]}
    assert {"FT104", "FT111", "FT120"} <= codes  # not UTF-8, BOM, duplicates
