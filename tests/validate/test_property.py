"""Whatever the bytes, validation gives a report: never an exception, never a crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftprep.problems import MAX_MESSAGE_CHARS, FileReport
from ftprep.validator import validate_bytes

from .conftest import chat, tool_chat

SEEDS = [
    chat(),
    chat("naïve café 🙂", "ok"),
    tool_chat(7),
    b'{"text": "A chain wears by stretching."}',
    b'{"text": "t", "labels": {"topic": "brakes"}}',
]


def check_invariants(data: bytes, report: FileReport) -> None:
    assert isinstance(report, FileReport)
    lines = data.split(b"\n")
    expected_lines = len(lines) - (1 if lines[-1] == b"" else 0)
    assert report.lines in (0, expected_lines)  # 0 when the file was refused whole
    assert report.records <= report.lines
    for p in report.problems:
        assert p.line is None or 1 <= p.line <= max(report.lines, 1)
        assert len(p.message) <= MAX_MESSAGE_CHARS
        assert p.code.startswith("FT")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_report(data: bytes) -> None:
    check_invariants(data, validate_bytes(data))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=5))
    data = bytearray(b"\n".join(lines) + draw(st.sampled_from([b"\n", b"\r\n", b""])))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(
            st.sampled_from(
                [0, 9, 10, 13, 0x22, 0x2C, 0x5B, 0x5C, 0x7B, 0x7D, 0x80, 0xC3, 0xED, 0xEF, 0xFF]
            )
        )
        if op == "insert":
            data[at:at] = bytes([byte])
        elif at < len(data):
            if op == "delete":
                del data[at]
            else:
                data[at] = byte
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from(["auto", "chat", "pretrain", "classifier"]))
def test_mutated_records_give_a_report(data: bytes, schema: str) -> None:
    check_invariants(data, validate_bytes(data, schema=schema))
