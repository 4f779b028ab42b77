"""The fast path agrees with the full check: quick_ok(raw) implies check(parse(raw)) == [].

It must also be useful: ordinary clean records take it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jiter
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ftprep import fastpath
from ftprep.formats import BUILTIN_FORMATS, detect_format, get_checker

SAMPLE_DATA = Path(__file__).resolve().parent.parent.parent / "sample_data"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_implies_clean(fmt: str, raw: bytes) -> bool:
    """The contract. Returns quick_ok's answer so tests can also count acceptances."""
    checker = get_checker(fmt)
    quick = checker.quick_ok(raw)
    if quick:
        record = orjson.loads(raw)  # quick_ok never says yes to a line orjson rejects
        assert isinstance(record, dict)
        assert checker.check(record) == [], raw[:300]
        # ... nor to a line with a duplicate key: the reader skips its own search.
        jiter.from_json(raw, catch_duplicate_keys=True, cache_mode=False)
    return quick


def mutate(line: bytes, data: st.DataObject) -> bytes:
    """One to three bytes flipped, inserted or deleted, from those JSON turns on."""
    raw = bytearray(line)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = data.draw(st.sampled_from(list(b' "{}[],:0a\\\x00\t\xff\xed')))
        if op == "flip":
            raw[pos] = byte
        elif op == "insert":
            raw.insert(pos, byte)
        else:
            del raw[pos]
    return bytes(raw)


def test_quick_ok_implies_clean_on_every_corpus_line(corpus_cases: list[Any]) -> None:
    accepted = 0
    for case in corpus_cases:
        if not case.path.is_file():
            continue
        for raw in case.path.read_bytes().split(b"\n"):
            for fmt in BUILTIN_FORMATS:
                accepted += assert_implies_clean(fmt, raw)
                accepted += assert_implies_clean(fmt, raw.rstrip(b"\r"))
    assert accepted > 20  # the corpus has plenty of plain records


def _plain_line(line: bytes) -> bool:
    """A record of the plain shape the fast path is for (no tools, no content parts)."""
    record = orjson.loads(line)
    fmt = detect_format(record)
    if fmt == "chat":
        return set(record) == {"messages"} and all(
            isinstance(m["content"], str) and m["role"] != "tool" for m in record["messages"]
        )
    if fmt == "classifier":
        return all(isinstance(m["content"], str) for m in record.get("messages", []))
    return fmt == "pretrain"


def test_quick_ok_accepts_the_clean_plain_records_of_the_sample_data() -> None:
    seen = 0
    for path in sorted(SAMPLE_DATA.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            record = orjson.loads(line)
            fmt = detect_format(record)
            assert fmt is not None
            checker = get_checker(fmt)
            if _plain_line(line) and checker.check(record) == []:
                seen += 1
                assert checker.quick_ok(line), line[:200]
    assert seen >= 15


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        ("chat", b'{"messages": [{"role": "user", "content": "hi"}]}'),  # FT301
        ("chat", b'{"messages": [{"role": "assistant", "content": "hi"}]}'),  # FT302
        ("chat", b'{"messages": []}'),  # FT205
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a"}, {"role": "system", "content": "s"}, '
            b'{"role": "user", "content": "q"}, '
            b'{"role": "assistant", "content": "a"}]}',
        ),  # FT303
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "   "}]}',
        ),  # FT401
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a", "weight": 0}]}',
        ),  # FT402
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q", "weight": 1}, '
            b'{"role": "assistant", "content": "a"}]}',
        ),  # FT305
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a", "weight": 1.0}]}',
        ),  # fine, but not the plain shape
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a"}], "id": 3}',
        ),  # FT408
        (
            "chat",
            b'{"messages": [{"role": "system", "content": "s"}, {"role": "system", '
            b'"content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a"}]}',
        ),  # FT404
        # orjson keeps the last of duplicate keys; so must the fast path.
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a", "content": ""}]}',
        ),
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a", "role": "user"}]}',
        ),
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a"}], "messages": [{"role": "user", "content": "q"}]}',
        ),
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q\\ud800"}, '
            b'{"role": "assistant", "content": "a"}]}',
        ),  # lone surrogate: invalid JSON
        (
            "chat",
            b'\xef\xbb\xbf{"messages": [{"role": "user", "content": "q"}, '
            b'{"role": "assistant", "content": "a"}]}',
        ),  # BOM
        ("pretrain", b'{"text": " "}'),
        ("pretrain", b'{"text": "a", "text": ""}'),
        ("classifier", b'{"text": "a", "messages": [], "labels": {"t": "x"}}'),
        ("classifier", b'{"text": "a", "labels": {"t": ["x", "x"]}}'),
        ("classifier", b'{"text": "a", "labels": {}}'),
        ("classifier", b'{"text": "a", "labels": {"": "x"}}'),
        ("classifier", b'{"messages": [{"role": "user", "content": ""}], "labels": {"t": "x"}}'),
    ],
)
def test_quick_ok_declines_records_with_any_problem(fmt: str, raw: bytes) -> None:
    assert get_checker(fmt).quick_ok(raw) is False
    assert_implies_clean(fmt, raw)


# ------------------------------------------------------------------ generated records

text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\n", "\u2028", "How do I true a wheel?", "Quarter turns."]),
)
weight = st.sampled_from([0, 1, 0.0, 1.0, 0.5, 2, -1, True, False, None, "1"])
role = st.sampled_from(["system", "user", "assistant", "tool", "bot", ""])


@st.composite
def message(draw: st.DrawFn) -> dict[str, Any]:
    m: dict[str, Any] = {"role": draw(role), "content": draw(text)}
    if draw(st.integers(0, 4)) == 0:
        m["weight"] = draw(weight)
    if draw(st.integers(0, 12)) == 0:
        m["name"] = draw(text)
    if draw(st.integers(0, 12)) == 0:
        del m["content"]
    return m


@st.composite
def chat_record(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"messages": draw(st.lists(message(), max_size=6))}
    if draw(st.integers(0, 10)) == 0:
        record[draw(st.sampled_from(["tools", "id", "labels"]))] = draw(
            st.sampled_from([[], 1, {}])
        )
    return record


@st.composite
def ordinary_chat_record(draw: st.DrawFn) -> dict[str, Any]:
    """A valid conversation of the plain shape: what most lines of real files look like."""
    words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1).filter(
        lambda s: not s.isspace()
    )
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(words)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(words)})
        answer: dict[str, Any] = {"role": "assistant", "content": draw(words)}
        if draw(st.booleans()):
            answer["weight"] = draw(st.sampled_from([0, 1]))
        messages.append(answer)
    messages[-1]["weight"] = 1
    return {"messages": messages}


def _serialize(record: object, style: int) -> bytes:
    if style == 0:
        return orjson.dumps(record)
    if style == 1:
        return json.dumps(record).encode()  # ASCII with \u escapes
    return json.dumps(record, ensure_ascii=False, indent=None, separators=(" , ", " : ")).encode()


@SETTINGS
@given(chat_record(), st.integers(0, 2))
@example({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, 0)
def test_quick_ok_implies_clean_on_generated_chat_records(record: Any, style: int) -> None:
    assert_implies_clean("chat", _serialize(record, style))


@SETTINGS
@given(ordinary_chat_record(), st.integers(0, 2))
def test_quick_ok_accepts_ordinary_chat_records(record: Any, style: int) -> None:
    raw = _serialize(record, style)
    assert get_checker("chat").check(orjson.loads(raw)) == []
    assert get_checker("chat").quick_ok(raw)


@SETTINGS
@given(ordinary_chat_record(), st.data())
def test_quick_ok_implies_clean_on_mutated_bytes(record: Any, data: st.DataObject) -> None:
    assert_implies_clean("chat", mutate(orjson.dumps(record), data))


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["text", "messages", "labels", "meta"]),
        st.one_of(
            text,
            st.dictionaries(st.text(max_size=4), st.one_of(text, st.lists(text, max_size=3))),
            st.lists(st.fixed_dictionaries({"role": role, "content": text}), max_size=3),
        ),
    )
)
def test_quick_ok_implies_clean_on_generated_pretrain_and_classifier_records(
    record: dict[str, Any],
) -> None:
    raw = orjson.dumps(record)
    assert_implies_clean("pretrain", raw)
    assert_implies_clean("classifier", raw)


@SETTINGS
@given(st.recursive(st.none() | st.booleans() | st.integers() | text, st.lists, max_leaves=20))
def test_check_never_raises_on_odd_values(value: Any) -> None:
    for fmt in BUILTIN_FORMATS:
        checker = get_checker(fmt)
        records = ({"messages": value}, {"messages": [value]}, {"text": value, "labels": value})
        for record in records:
            checker.check(record)
            assert_implies_clean(fmt, json.dumps(record).encode())


# ------------------------------------------------- the chat schema's shape (slow path)

odd = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(0, 1), text)
odd = odd | st.builds(list)  # a fresh empty list each time: mutations may append to it


@st.composite
def valid_rich_chat(draw: st.DrawFn) -> dict[str, Any]:
    """A schema-valid chat record using every shape: parts, images, tool calls, tools."""
    call_ids = ["TX92Jm8Zi", "a1B2c3D4e"]
    image = draw(
        st.sampled_from(
            [
                "data:image/png;base64,AAAA",
                {"url": "https://e.com/a.png"},
                {"url": "u", "detail": None},
            ]
        )
    )
    user_content = draw(
        st.sampled_from(
            [
                "q",
                [{"type": "text", "text": "q"}],
                [{"type": "image_url", "image_url": image}, {"type": "text", "text": "q"}],
            ]
        )
    )
    call = {"id": call_ids[0], "function": {"name": "f", "arguments": '{"a": 1}'}}
    if draw(st.booleans()):
        call["type"] = "function"
    system = draw(st.sampled_from(["s", [{"type": "text", "text": "s"}]]))
    answer = draw(st.sampled_from(["a", None, [{"type": "text", "text": "a"}]]))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user_content},
        {"role": "assistant", "tool_calls": [call], "weight": draw(st.sampled_from([0, 1, 1.0]))},
        {"role": "tool", "tool_call_id": call_ids[0], "content": "r", "name": "f"},
        {"role": "assistant", "content": answer},
    ]
    fn: dict[str, Any] = {"name": "f", "parameters": {"type": "object"}}
    if draw(st.booleans()):
        fn.update(description="d", strict=draw(st.booleans()))
    tool: dict[str, Any] = {"function": fn}
    if draw(st.booleans()):
        tool["type"] = "function"
    record: dict[str, Any] = {"messages": messages, "tools": [tool]}
    if draw(st.booleans()):
        record["meta"] = draw(odd)
    return record


def _nodes(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        out.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            _nodes(child, out)
    return out


@st.composite
def mutated_rich_chat(draw: st.DrawFn) -> dict[str, Any]:
    """A valid rich record with up to three small breakages anywhere inside it."""
    record = draw(valid_rich_chat())
    for _ in range(draw(st.integers(0, 3))):
        node = draw(st.sampled_from(_nodes(record, [])))
        if isinstance(node, dict):
            keys = sorted(node)
            op = draw(st.sampled_from(["replace", "add", "delete"] if keys else ["add"]))
            if op == "add":
                node[draw(st.sampled_from(["x", "role", "type", "text", "weight", "detail"]))] = (
                    draw(odd)
                )
            elif op == "delete":
                del node[draw(st.sampled_from(keys))]
            else:
                node[draw(st.sampled_from(keys))] = draw(odd)
        elif node:
            node[draw(st.integers(0, len(node) - 1))] = draw(odd)
        else:
            node.append(draw(odd))
    return record


def schema_errors(record: object) -> list[str]:
    from jsonschema import Draft202012Validator

    from ftprep.formats import builtin_schema

    validator = Draft202012Validator(builtin_schema("chat"))
    return [e.message[:100] for e in validator.iter_errors(record)]


@SETTINGS
@given(mutated_rich_chat())
@example({"messages": [{"role": "system", "content": [{"text": "s"}]}]})  # part without type
def test_chat_shape_ok_implies_the_schema_finds_nothing(record: dict[str, Any]) -> None:
    from ftprep.fastpath import chat_shape_ok

    if chat_shape_ok(record):
        assert schema_errors(record) == []


@SETTINGS
@given(valid_rich_chat())
def test_chat_shape_ok_accepts_valid_records_of_every_shape(record: dict[str, Any]) -> None:
    from ftprep.fastpath import chat_shape_ok

    assert schema_errors(record) == []
    assert chat_shape_ok(record)


def test_chat_shape_ok_agrees_with_the_schema_on_every_corpus_record(
    corpus_cases: list[Any],
) -> None:
    from ftprep.fastpath import chat_shape_ok

    shaped = 0
    for case in corpus_cases:
        if not case.path.is_file():
            continue
        for raw in case.path.read_bytes().split(b"\n"):
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if detect_format(record) != "chat":
                continue
            # On the corpus the two must agree both ways: every schema-valid record
            # of the corpus has a shape the structs describe.
            assert chat_shape_ok(record) == (schema_errors(record) == []), raw[:200]
            shaped += chat_shape_ok(record)
    assert shaped > 50


# ------------------------------------------------- tool calls and duplicate keys


def _tool_record(**change: Any) -> dict[str, Any]:
    """A clean conversation with one declared tool, one call and its answer."""
    record: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "Is SKU-7 in stock?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "TX92Jm8Zi",
                        "type": "function",
                        "function": {"name": "check_stock", "arguments": '{"sku": "SKU-7"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "TX92Jm8Zi", "content": '{"units": 3}'},
            {"role": "assistant", "content": "Yes: 3 units."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "check_stock",
                    "description": "Units in stock: a count",
                    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}},
                },
            }
        ],
    }
    record.update(change)
    return record


def test_quick_ok_accepts_a_clean_record_with_tool_calls() -> None:
    raw = orjson.dumps(_tool_record())
    assert get_checker("chat").check(orjson.loads(raw)) == []
    assert assert_implies_clean("chat", raw)


def test_quick_ok_accepts_keys_with_whitespace_before_their_colon() -> None:
    raw = json.dumps(_tool_record(), separators=(" , ", " \t: ")).encode()
    assert assert_implies_clean("chat", raw)


def _tool_variants() -> list[bytes]:
    clean = orjson.dumps(_tool_record())
    swaps = [
        (b'"id":"TX92Jm8Zi"', b'"id":"call_1"'),  # FT308
        (b'"tool_call_id":"TX92Jm8Zi"', b'"tool_call_id":"Zz9Zz9Zz9"'),  # FT311
        (b'"function":{"name":"check_stock","arguments"', b'"function":{"name":"nope","arguments"'),
        (b'{\\"sku\\": \\"SKU-7\\"}', b"[1]"),  # FT406
        (b'{\\"sku\\": \\"SKU-7\\"}', b"{x"),  # FT310
        (b'"type":"string"', b'"type":"map"'),  # FT314
        (b'"name":"check_stock","description"', b'"name":"check stock","description"'),
        (b'"content":"Yes: 3 units."}', b'"content":"Yes: 3 units.","weight":0}'),  # FT403
        # Duplicates, in the structure, in the parameters, and hidden behind whitespace.
        (b'"tool_call_id":"TX92Jm8Zi"', b'"tool_call_id":"TX92Jm8Zi","tool_call_id" :"TX92Jm8Zi"'),
        (b'{"type":"string"}', b'{"type":"string","type":"string"}'),
        (b'"role":"user",', b'"role":"user","content" \t: "x",'),
        # A colon inside a string stands in for the duplicate's colon: still caught.
        (b'"Yes: 3 units."', b'"Yes 3 units.","content":"Yes 3 units."'),
    ]
    out = []
    for old, new in swaps:
        assert old in clean, old
        out.append(clean.replace(old, new, 1))
    # The answer left out: a tool call with no response before the next assistant turn.
    record = _tool_record()
    del record["messages"][2]
    out.append(orjson.dumps(record))
    return out


@pytest.mark.parametrize("raw", _tool_variants())
def test_quick_ok_declines_tool_records_with_any_problem(raw: bytes) -> None:
    assert get_checker("chat").quick_ok(raw) is False
    assert_implies_clean("chat", raw)


def test_a_repeated_tools_array_is_judged_once_and_each_record_on_its_own() -> None:
    clean = orjson.dumps(_tool_record())
    bad_tools = clean.replace(b'"type":"string"', b'"type":"map"', 1)  # FT314
    dup_in_tools = clean.replace(b'{"type":"string"}', b'{"type":"string","type":"string"}', 1)
    bad_messages = clean.replace(b'"id":"TX92Jm8Zi"', b'"id":"call_1"', 1)  # same tools
    checker = get_checker("chat")
    fastpath._TOOLSETS.clear()
    for _ in range(3):  # after the first round the tools' verdicts come from the cache
        assert checker.quick_ok(clean) is True
        assert checker.quick_ok(bad_tools) is False
        assert checker.quick_ok(dup_in_tools) is False
        assert checker.quick_ok(bad_messages) is False
    assert len(fastpath._TOOLSETS) == 3  # clean (shared by bad_messages), bad, duplicate
    assert sum(v is None for v in fastpath._TOOLSETS.values()) == 2


def test_a_large_tools_array_is_judged_each_time_without_being_kept() -> None:
    big = _tool_record()
    big["tools"][0]["function"]["description"] = "Units in stock: " + "x" * 20_000
    raw = orjson.dumps(big)
    fastpath._TOOLSETS.clear()
    assert assert_implies_clean("chat", raw)
    assert get_checker("chat").quick_ok(raw.replace(b'"type":"string"', b'"type":"map"')) is False
    assert fastpath._TOOLSETS == {}


# Records without "tools" take a loop of their own that derives the key count from
# the message count; these cover each way out of it.
_USER = b'{"role": "user", "content": "Q: 1"}'
_ANSWER = b'{"role": "assistant", "content": "A: 2"}'
_CALL = (
    b'{"role": "assistant", "tool_calls": [{"id": "TX92Jm8Zi", '
    b'"function": {"name": "f", "arguments": "{}"}}]}'
)
_REPLY = b'{"role": "tool", "tool_call_id": "TX92Jm8Zi", "content": "3"}'


def _chat(*messages: bytes) -> bytes:
    return b'{"messages": [' + b", ".join(messages) + b"]}"


@pytest.mark.parametrize(
    "raw",
    [
        _chat(_USER, _ANSWER),
        _chat(b'{"role": "system", "content": "S: x"}', _USER, _ANSWER),
        _chat(_USER, b'{"role": "assistant", "content": "a", "weight": 0}', _USER, _ANSWER),
        _chat(_USER, b'{"role": "assistant", "content": "a", "weight": 1}'),
        _chat(_USER, b'{"role": "assistant", "content": "\\u00e9 \\n"}'),
    ],
)
def test_quick_ok_accepts_clean_records_without_tools(raw: bytes) -> None:
    assert assert_implies_clean("chat", raw)


@pytest.mark.parametrize(
    "raw",
    [
        _chat(_USER, _CALL, _REPLY, _ANSWER),  # FT313: no tools declared
        _chat(_USER, _ANSWER, _REPLY, _ANSWER),  # FT311 / FT303
        _chat(_USER, b'{"role": "assistant"}'),  # FT307
        _chat(_USER, b'{"role": "assistant", "content": "\\n\\t "}'),  # FT401
        _chat(_USER, b'{"role": "assistant", "content": ""}'),  # FT401
        _chat(b'{"role": "user", "content": null}', _ANSWER),  # FT201
        _chat(_USER, b'{"role": "assistant", "content": [{"type": "text", "text": "a"}]}'),
        _chat(_USER, b'{"role": "assistant", "content": "a", "weight": 0}'),  # FT402
        _chat(_USER, _ANSWER, b'{"role": "system", "content": "s"}', _USER, _ANSWER),  # FT303
        # A duplicate key whose colon a colon inside a string would hide.
        _chat(b'{"role": "user", "content": "Q 1", "content": "Q 1"}', _ANSWER),
        _chat(b'{"role": "user", "content": "Q 1", "role": "user"}', _ANSWER),
    ],
)
def test_quick_ok_declines_records_without_tools_with_any_problem(raw: bytes) -> None:
    assert get_checker("chat").quick_ok(raw) is False
    assert_implies_clean("chat", raw)


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a: \\":\\":"}]}',
        ),
        ("pretrain", b'{"text": "Note: \\": a colon inside"}'),
    ],
)
def test_quick_ok_accepts_colons_and_escaped_quotes_inside_strings(fmt: str, raw: bytes) -> None:
    assert assert_implies_clean(fmt, raw)


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q", "content" :"q:"}, '
            b'{"role": "assistant", "content": "a"}]}',
        ),
        (
            "chat",
            b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
            b'"content": "a", "role": "assistant"}]}',
        ),
        ("pretrain", b'{"text": "a:", "text"\r: "b"}'),
        ("classifier", b'{"text": "a", "labels": {"t": "x", "t" : "y"}}'),
    ],
)
def test_quick_ok_declines_duplicate_keys(fmt: str, raw: bytes) -> None:
    assert get_checker(fmt).quick_ok(raw) is False


@SETTINGS
@given(st.data())
def test_quick_ok_implies_clean_on_mutated_tool_records(data: st.DataObject) -> None:
    assert_implies_clean("chat", mutate(orjson.dumps(_tool_record()), data))
