"""Each of Mistral's rules, format detection, and short messages whatever the input."""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

import pytest

from ftprep import fastpath, formats, rules
from ftprep.formats import detect_format, get_checker
from ftprep.rules import RULES

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "rules.md"


def U(content: Any = "How often should I oil my chain?", **kw: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **kw}


def A(content: Any = "Every 150 km.", **kw: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **kw}


def S(content: Any = "Be concise.") -> dict[str, Any]:
    return {"role": "system", "content": content}


def call(cid: str = "TX92Jm8Zi", name: str = "get_weather", args: Any = '{"city": "Lyon"}') -> Any:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def AT(*calls: Any) -> dict[str, Any]:
    return {"role": "assistant", "tool_calls": list(calls)}


def T(cid: str = "TX92Jm8Zi", content: str = "rain", **kw: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": cid, "content": content, **kw}


def tool(name: str = "get_weather", parameters: Any = None) -> dict[str, Any]:
    params = {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"type": "function", "function": {"name": name, "parameters": parameters or params}}


def chat(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


def found(record: dict[str, Any], fmt: str = "chat") -> list[tuple[str, str | None]]:
    return [(p.code, p.json_path) for p in get_checker(fmt).check(record)]


def only_codes(record: dict[str, Any], fmt: str = "chat") -> list[str]:
    return [c for c, _ in found(record, fmt)]


# ------------------------------------------------------------------- conversation


def test_clean_conversation_has_no_problem() -> None:
    assert found(chat(S(), U(), A(), U("And brakes?"), A("Check pads monthly."))) == []


def test_last_message_must_be_the_assistants() -> None:
    assert found(chat(U(), A(), U("Thanks"))) == [("FT301", "$.messages[2].role")]
    assert found(chat(S())) == [("FT301", "$.messages[0].role")]


def test_conversation_starts_with_system_or_user() -> None:
    assert found(chat(A(), U(), A())) == [("FT302", "$.messages[0].role")]
    assert found(chat(S(), A())) == []


@pytest.mark.parametrize(
    ("messages", "bad_index"),
    [
        ([U(), T(), A()], 1),  # user -> tool
        ([S(), T(), A()], 1),  # system -> tool
        ([U(), A(), S(), U(), A()], 2),  # assistant -> system
        ([U(), AT(call()), T(), S(), A()], 3),  # tool -> system
    ],
)
def test_role_transitions_follow_mistral_common(messages: list[Any], bad_index: int) -> None:
    problems = found(chat(*messages, tools=[tool()]))
    assert ("FT303", f"$.messages[{bad_index}].role") in problems


@pytest.mark.parametrize(
    "messages",
    [
        [U(), U(), A()],
        [U(), S(), A()],
        [S(), S(), U(), A()],
        [U(), A(), A()],
        [U(), AT(call()), T(), U(), A()],
        [U(), AT(call(), call("a1B2c3D4e")), T(), T("a1B2c3D4e"), A()],
    ],
)
def test_allowed_transitions_raise_no_order_error(messages: list[Any]) -> None:
    assert "FT303" not in only_codes(chat(*messages, tools=[tool()]))


# ------------------------------------------------------------------------ weights


@pytest.mark.parametrize("weight", [0, 1, 1.0])
def test_weight_zero_or_one_on_assistant_is_fine(weight: Any) -> None:
    assert "FT304" not in only_codes(chat(U(), A(weight=0), U(), A(weight=weight)))


@pytest.mark.parametrize(("weight", "extra"), [(0.5, []), (2, []), (-1, []), (True, ["FT201"])])
def test_weight_other_than_zero_or_one_is_an_error(weight: Any, extra: list[str]) -> None:
    assert sorted(only_codes(chat(U(), A(weight=weight)))) == sorted(["FT304", *extra])


def test_weight_on_a_user_message_is_an_error() -> None:
    assert found(chat(U(weight=1), A())) == [("FT305", "$.messages[0].weight")]


def test_every_assistant_weight_zero_teaches_nothing() -> None:
    assert only_codes(chat(U(), A(weight=0), U(), A(weight=0))) == ["FT402"]
    assert only_codes(chat(U(), A(weight=0), U(), A())) == []


def test_with_tools_a_zero_weight_last_answer_leaves_nothing_trained() -> None:
    record = chat(U(), AT(call()), T(), A(weight=0), tools=[tool()])
    assert found(record) == [("FT403", "$.messages[3].weight")]


# ------------------------------------------------------------- content / tool_calls


def test_assistant_with_tool_calls_cannot_have_content() -> None:
    for content in ("Let me check.", "", None):
        msg = {**AT(call()), "content": content}
        record = chat(U(), msg, T(), A(), tools=[tool()])
        assert found(record) == [("FT306", "$.messages[1].content")]


@pytest.mark.parametrize("assistant", [A(""), A(None), {"role": "assistant"}, A([])])
def test_assistant_without_content_or_tool_calls_is_an_error(assistant: Any) -> None:
    assert found(chat(U(), assistant)) == [("FT307", "$.messages[1]")]


@pytest.mark.parametrize("content", [" ", "\n\t", [{"type": "text", "text": " "}]])
def test_blank_assistant_content_is_a_warning(content: Any) -> None:
    assert found(chat(U(), A(content))) == [("FT401", "$.messages[1].content")]


def test_blank_user_or_system_content_is_a_warning() -> None:
    assert found(chat(S(""), U(" "), A())) == [
        ("FT405", "$.messages[0].content"),
        ("FT405", "$.messages[1].content"),
    ]
    image = {"type": "image_url", "image_url": "data:image/png;base64,AAAA"}
    assert found(chat(U([image]), A())) == []


def test_empty_tool_calls_list_is_read_as_none() -> None:
    assert found(chat(U(), A(tool_calls=[]))) == [("FT411", "$.messages[1].tool_calls")]
    assert sorted(only_codes(chat(U(), {"role": "assistant", "tool_calls": []}))) == [
        "FT307",
        "FT411",
    ]


def test_second_system_message_is_a_warning() -> None:
    assert found(chat(S(), U(), S("Answer in French."), A())) == [("FT404", "$.messages[2]")]


# --------------------------------------------------------------------------- tools


def test_tool_call_ids_are_nine_letters_or_digits() -> None:
    record = chat(U(), AT(call("call_1")), T("call_1"), A(), tools=[tool()])
    assert found(record) == [
        ("FT308", "$.messages[1].tool_calls[0].id"),
        ("FT308", "$.messages[2].tool_call_id"),
    ]
    ok = chat(U(), AT(call("a1B2c3D4e")), T("a1B2c3D4e"), A(), tools=[tool()])
    assert found(ok) == []


def test_function_names_follow_mistrals_pattern() -> None:
    record = chat(
        U(), AT(call(name="get weather")), T(name="x" * 65), A(), tools=[tool("get weather")]
    )
    assert found(record) == [
        ("FT309", "$.tools[0].function.name"),
        ("FT309", "$.messages[1].tool_calls[0].function.name"),
        ("FT309", "$.messages[2].name"),
    ]


def test_arguments_must_be_a_json_encoded_string() -> None:
    def codes_for(args: Any) -> list[str]:
        return only_codes(chat(U(), AT(call(args=args)), T(), A(), tools=[tool()]))

    assert codes_for('{"city": "Lyon"}') == []
    assert codes_for("{city: Lyon}") == ["FT310"]
    assert codes_for("") == ["FT310"]
    assert codes_for({"city": "Lyon"}) == ["FT201"]
    assert codes_for('["Lyon"]') == ["FT406"]


def test_tool_message_must_answer_an_earlier_call() -> None:
    record = chat(U(), AT(call()), T("Zz9Zz9Zz9"), A(), tools=[tool()])
    assert found(record) == [("FT311", "$.messages[2].tool_call_id")]


def test_tool_calls_and_responses_pair_up() -> None:
    fewer = chat(U(), AT(call(), call("a1B2c3D4e")), T(), A(), tools=[tool()])
    assert found(fewer) == [("FT312", "$.messages[3]")]
    more = chat(U(), AT(call()), T(), T(), A(), tools=[tool()])
    assert found(more) == [("FT312", "$.messages[4]")]
    unanswered_last = chat(U(), AT(call()), tools=[tool()])
    assert found(unanswered_last) == []  # training on the call itself


def test_called_functions_must_be_declared() -> None:
    no_tools = chat(U(), AT(call()), T(), A())
    assert found(no_tools) == [("FT313", "$.messages[1].tool_calls[0].function.name")]
    other = chat(U(), AT(call(name="get_forecast")), T(), A(), tools=[tool()])
    assert only_codes(other) == ["FT313"]


def test_tool_parameters_must_be_a_draft7_schema() -> None:
    record = chat(U(), A(), tools=[tool(parameters={"type": "map"})])
    assert found(record) == [("FT314", "$.tools[0].function.parameters")]
    message = get_checker("chat").check(record)[0].message
    assert "parameters.type" in message


def test_duplicate_ids_declarations_and_too_many_tools_are_warnings() -> None:
    dup_id = chat(U(), AT(call(), call()), T(), T(), A(), tools=[tool()])
    assert found(dup_id) == [("FT407", "$.messages[1].tool_calls[1].id")]
    assert found(chat(U(), A(), tools=[tool(), tool()])) == [("FT409", "$.tools[1].function.name")]
    many = [tool(f"f{i}", {}) for i in range(129)]
    assert found(chat(U(), A(), tools=many)) == [("FT410", "$.tools")]


def test_image_urls_are_data_or_http() -> None:
    part = {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
    assert found(chat(U([part]), A())) == [("FT413", "$.messages[0].content[0].image_url.url")]


def test_unknown_top_level_key_is_a_warning_unknown_nested_key_an_error() -> None:
    assert found(chat(U(), A(), id=3)) == [("FT408", "$.id")]
    assert found(chat(U(), A(lang="en"))) == [("FT203", "$.messages[1].lang")]


# -------------------------------------------------------------- pretrain, classifier


def test_pretrain_records() -> None:
    assert found({"text": "A chain wears."}, "pretrain") == []
    assert found({"text": ""}, "pretrain") == [("FT403", "$.text")]
    assert found({"text": 3}, "pretrain") == [("FT201", "$.text")]
    assert found({"content": "x"}, "pretrain") == [("FT202", "$"), ("FT408", "$.content")]


def test_classifier_records() -> None:
    assert found({"text": "x", "labels": {"topic": ["a", "b"], "lang": "en"}}, "classifier") == []
    both = {"text": "x", "messages": [U()], "labels": {"t": "a"}}
    assert found(both, "classifier") == [("FT209", "$")]
    assert found({"text": "x", "labels": {"t": ["a", "a"]}}, "classifier") == [
        ("FT412", "$.labels.t[1]")
    ]
    assert found({"labels": {"t": "a"}}, "classifier") == [("FT202", "$")]


# ------------------------------------------------------------------ detect_format


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        ({"messages": []}, "chat"),
        ({"messages": [], "tools": []}, "chat"),
        ({"text": "t"}, "pretrain"),
        ({"text": "t", "labels": {}}, "classifier"),
        ({"messages": [], "labels": {}}, "classifier"),
        ({"labels": {}}, None),
        ({"prompt": "p", "completion": "c"}, None),
        ([], None),
        ("text", None),
    ],
)
def test_detect_format_tells_the_formats_apart(record: object, fmt: str | None) -> None:
    assert detect_format(record) == fmt


# ------------------------------------------------------------------ bounded output


def test_messages_and_paths_stay_short_for_ten_megabyte_values() -> None:
    big = "x" * 10_000_000
    records = [
        chat({"role": big, "content": big}, A(big, weight=big)),
        chat(U(big), A(big, **{big: 1}), **{big: big}),
        chat(U(), AT(call(big, big, big)), T(big, big, name=big), A(), tools=[tool(big)]),
        chat(U([{"type": big, "text": big}, {"type": "image_url", "image_url": big}]), A()),
        chat(U(), A(), tools=[tool(parameters={"type": big, "pattern": big})]),
    ]
    seen = set()
    for record in records:
        for problem in get_checker("chat").check(record):
            seen.add(problem.code)
            assert len(problem.message.encode()) < 1024, problem.code
            assert len((problem.json_path or "").encode()) < 256, problem.code
    classifier = {"text": big, "labels": {big: [big, big]}, big: 1}
    for problem in get_checker("classifier").check(classifier):
        seen.add(problem.code)
        assert len(problem.message.encode()) < 1024
    assert len(seen) >= 10  # the values did reach many different rules


# ---------------------------------------------------------------------------- docs


def test_every_rule_has_a_docs_entry_and_every_entry_is_a_rule() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = re.findall(r"^### (FT\d{3})\b", text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(RULES)
    for code in RULES:
        section = text.split(f"### {code}", 1)[1].split("\n### ", 1)[0]
        assert "Example" in section and "Fix" in section, code


@pytest.mark.parametrize("module", [rules, formats, fastpath], ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
