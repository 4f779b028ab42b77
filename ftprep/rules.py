"""Mistral's rules beyond JSON Schema: small pure functions over one parsed record.

Each rule takes a record that is a ``dict`` (it may still break the schema: the
rules skip what they cannot read, the schema check reports it) and yields
:class:`~ftprep.problems.Problem` values with ``line``/``column`` unset and a
``json_path`` such as ``$.messages[2].role``. Every code is listed in
:data:`RULES` and documented in ``docs/rules.md``.

>>> [p.code for p in check_chat_rules({"messages": [{"role": "user", "content": "hi"}]})]
['FT301']
>>> check_chat_rules({"messages": [{"role": "user", "content": "hi"},
...                                {"role": "assistant", "content": "hello"}]})
[]
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .problems import Problem, Severity, clip

__all__ = [
    "CHAT_RULES",
    "CLASSIFIER_RULES",
    "PRETRAIN_RULES",
    "RULES",
    "Rule",
    "check_chat_rules",
    "check_classifier_rules",
    "check_pretrain_rules",
    "draft7_problem",
    "is_blank",
    "json_path",
]


@dataclass(frozen=True)
class Rule:
    """A stable rule code, its severity and a one-line summary (the docs say more)."""

    code: str
    severity: Severity
    summary: str


_ALL_RULES = (
    # JSON Schema violations (builtin or user schema); the keyword decides the code.
    Rule("FT201", "error", "wrong JSON type"),
    Rule("FT202", "error", "required key missing"),
    Rule("FT203", "error", "unknown key"),
    Rule("FT204", "error", "value not allowed (enum/const)"),
    Rule("FT205", "error", "too short, too long, too few or too many items"),
    Rule("FT206", "error", "string does not match the pattern or format"),
    Rule("FT207", "error", "number out of the allowed range"),
    Rule("FT208", "error", "matches more than one alternative (oneOf)"),
    Rule("FT209", "error", "other JSON Schema constraint failed"),
    Rule("FT210", "error", "the schema cannot be applied to this record"),
    # Mistral's conversation and tool rules.
    Rule("FT301", "error", "the last message is not the assistant's"),
    Rule("FT302", "error", "the conversation does not start with a system or user message"),
    Rule("FT303", "error", "role not allowed after the previous role"),
    Rule("FT304", "error", "weight is not 0 or 1"),
    Rule("FT305", "error", "weight on a message that is not the assistant's"),
    Rule("FT306", "error", "assistant message has both content and tool_calls"),
    Rule("FT307", "error", "assistant message has neither content nor tool_calls"),
    Rule("FT308", "error", "tool call id is not exactly 9 letters or digits"),
    Rule("FT309", "error", "function name is not 1-64 of a-z A-Z 0-9 _ -"),
    Rule("FT310", "error", "tool call arguments are not valid JSON"),
    Rule("FT311", "error", "tool_call_id answers no earlier tool call"),
    Rule("FT312", "error", "tool calls and tool responses do not pair up"),
    Rule("FT313", "error", "called function not declared in tools"),
    Rule("FT314", "error", "tool parameters are not a valid JSON Schema (Draft 7)"),
    # What probably hurts training.
    Rule("FT401", "warning", "assistant content is blank"),
    Rule("FT402", "warning", "every assistant message has weight 0"),
    Rule("FT403", "warning", "the record has no trainable tokens"),
    Rule("FT404", "warning", "more than one system message"),
    Rule("FT405", "warning", "user or system content is blank"),
    Rule("FT406", "warning", "tool call arguments are not a JSON object"),
    Rule("FT407", "warning", "tool call id used twice in a conversation"),
    Rule("FT408", "warning", "unknown top-level key"),
    Rule("FT409", "warning", "function declared twice in tools"),
    Rule("FT410", "warning", "more than 128 tools"),
    Rule("FT411", "warning", "empty tool_calls list"),
    Rule("FT412", "warning", "the same label listed twice"),
    Rule("FT413", "warning", "image URL is neither a data: URI nor http(s)"),
)

#: Every record-level code this module and :mod:`ftprep.formats` can report.
RULES: Mapping[str, Rule] = {r.code: r for r in _ALL_RULES}

ROLES = ("system", "user", "assistant", "tool")

#: Role order as mistral-common's finetuning validator allows it.
ALLOWED_NEXT: Mapping[str, frozenset[str]] = {
    "system": frozenset({"user", "assistant", "system"}),
    "user": frozenset({"assistant", "system", "user"}),
    "assistant": frozenset({"assistant", "user", "tool"}),
    "tool": frozenset({"assistant", "tool", "user"}),
}

TOOL_CALL_ID_RE = re.compile(r"[a-zA-Z0-9]{9}")
FUNCTION_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Mistral's documented limit on tools per request.
MAX_TOOLS = 128

TOP_LEVEL_KEYS: Mapping[str, frozenset[str]] = {
    "chat": frozenset({"messages", "tools"}),
    "pretrain": frozenset({"text"}),
    "classifier": frozenset({"text", "messages", "labels"}),
}

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(parts: Iterable[str | int]) -> str:
    """Render a path into a record the way users read it.

    >>> json_path(["messages", 2, "role"])
    '$.messages[2].role'
    >>> json_path(["labels", "is english"])
    '$.labels["is english"]'
    """
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif len(part) <= 40 and _IDENT_RE.fullmatch(part):
            out.append(f".{part}")
        else:
            out.append("[" + orjson.dumps(clip(part, 40)).decode() + "]")
    return "".join(out)


def is_blank(text: str) -> bool:
    """True for ``""`` and whitespace-only strings (the fast path uses the same test).

    >>> is_blank("  \\n"), is_blank("a")
    (True, False)
    """
    return not text or text.isspace()


def _problem(code: str, message: str, path: Iterable[str | int]) -> Problem:
    return Problem(
        severity=RULES[code].severity, code=code, message=message, json_path=json_path(path)
    )


def _q(value: object) -> str:
    """Quote a user value for a message, short whatever its size."""
    if isinstance(value, str):
        return repr(clip(value, 60))
    return clip(repr(value), 60)


def _content_blank(content: object) -> bool | None:
    """Whether a content value carries no text: None when it is not a content value."""
    if isinstance(content, str):
        return is_blank(content)
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                return None
            if part.get("type") == "image_url":
                return False
            text = part.get("text")
            if not isinstance(text, str):
                return None
            if not is_blank(text):
                return False
        return True
    return None


# --------------------------------------------------------------------- chat views


@dataclass(frozen=True)
class _Msg:
    index: int
    data: dict[str, Any]
    role: str | None  # None when missing or unknown: the schema reports it

    @property
    def tool_calls(self) -> list[Any] | None:
        calls = self.data.get("tool_calls")
        return calls if isinstance(calls, list) else None


def _messages(record: Mapping[str, Any]) -> list[_Msg]:
    raw = record.get("messages")
    if not isinstance(raw, list):
        return []
    out = []
    for i, m in enumerate(raw):
        if isinstance(m, dict):
            role = m.get("role")
            out.append(_Msg(i, m, role if isinstance(role, str) and role in ROLES else None))
        else:
            out.append(_Msg(i, {}, None))
    return out


def _calls(msg: _Msg) -> Iterator[tuple[int, dict[str, Any]]]:
    if msg.role != "assistant" or msg.tool_calls is None:
        return
    for j, call in enumerate(msg.tool_calls):
        if isinstance(call, dict):
            yield j, call


def _function(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    fn = obj.get("function")
    return fn if isinstance(fn, dict) else None


def _tools(record: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    tools = record.get("tools")
    if not isinstance(tools, list):
        return []
    out = []
    for k, tool in enumerate(tools):
        if isinstance(tool, dict) and (fn := _function(tool)) is not None:
            out.append((k, fn))
    return out


# --------------------------------------------------------------------- chat rules


def last_message_is_assistant(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT301: training learns the assistant's answer, so the last turn must be one.

    >>> [p.json_path for p in last_message_is_assistant({"messages": [{"role": "user",
    ...     "content": "q"}]})]
    ['$.messages[0].role']
    """
    msgs = _messages(record)
    if msgs and msgs[-1].role is not None and msgs[-1].role != "assistant":
        last = msgs[-1]
        yield _problem(
            "FT301",
            f"the last message must be the assistant's, got {last.role!r}: "
            "end the conversation with an assistant answer or drop the trailing turn",
            ["messages", last.index, "role"],
        )


def starts_with_system_or_user(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT302: a conversation opens with a system prompt or the user's turn.

    >>> [p.code for p in starts_with_system_or_user({"messages": [{"role": "assistant",
    ...     "content": "a"}, {"role": "user", "content": "q"}, {"role": "assistant",
    ...     "content": "a"}]})]
    ['FT302']
    """
    msgs = _messages(record)
    if msgs and msgs[0].role in ("assistant", "tool"):
        yield _problem(
            "FT302",
            f"a conversation must start with a system or user message, not {msgs[0].role!r}: "
            "add the user turn that prompts it, or drop the message",
            ["messages", 0, "role"],
        )


def role_order(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT303: only the role transitions mistral-common's validator allows.

    >>> [p.code for p in role_order({"messages": [{"role": "user", "content": "q"},
    ...     {"role": "assistant", "content": "a"}, {"role": "system", "content": "s"}]})]
    ['FT303']
    """
    msgs = _messages(record)
    for prev, cur in itertools.pairwise(msgs):
        if prev.role is None or cur.role is None:
            continue
        allowed = ALLOWED_NEXT[prev.role]
        if cur.role not in allowed:
            yield _problem(
                "FT303",
                f"a {cur.role!r} message cannot follow a {prev.role!r} message "
                f"(after {prev.role!r} come: {', '.join(sorted(allowed))})",
                ["messages", cur.index, "role"],
            )


def weights(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT304/FT305: weight is 0 or 1 and only on assistant messages.

    >>> [p.code for p in weights({"messages": [{"role": "user", "content": "q"},
    ...     {"role": "assistant", "content": "a", "weight": 0.5}]})]
    ['FT304']
    """
    for msg in _messages(record):
        if "weight" not in msg.data or msg.role is None:
            continue
        w = msg.data["weight"]
        if msg.role != "assistant":
            yield _problem(
                "FT305",
                f"weight is only allowed on assistant messages: remove it from this "
                f"{msg.role!r} message (only assistant messages are trained on)",
                ["messages", msg.index, "weight"],
            )
        elif isinstance(w, bool) or not isinstance(w, int | float) or w not in (0, 1):
            yield _problem(
                "FT304",
                f"weight must be 0 or 1, got {_q(w)}: 0 skips this message in training, "
                "1 (or no weight) trains on it",
                ["messages", msg.index, "weight"],
            )


def assistant_content_or_tool_calls(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT306/FT307/FT401/FT411: an assistant turn says something, one way or the other.

    >>> [p.code for p in assistant_content_or_tool_calls({"messages": [{"role": "user",
    ...     "content": "q"}, {"role": "assistant", "content": ""}]})]
    ['FT307']
    """
    for msg in _messages(record):
        if msg.role != "assistant":
            continue
        calls = msg.tool_calls
        if calls is not None and not calls:
            yield _problem(
                "FT411",
                "tool_calls is an empty list: remove the key (it is read as no tool calls)",
                ["messages", msg.index, "tool_calls"],
            )
        content = msg.data.get("content")
        if calls:
            if "content" in msg.data:
                yield _problem(
                    "FT306",
                    "an assistant message with tool_calls cannot have a 'content' key "
                    "(even empty or null): remove 'content', and put any text in its own "
                    "assistant message",
                    ["messages", msg.index, "content"],
                )
            continue
        if content is None or content == "" or content == []:
            yield _problem(
                "FT307",
                "assistant message has neither content nor tool_calls: write the answer "
                "in 'content', or drop the message",
                ["messages", msg.index],
            )
        elif _content_blank(content):
            yield _problem(
                "FT401",
                "assistant content is blank: there is nothing to learn from it; "
                "write the answer or drop the message",
                ["messages", msg.index, "content"],
            )


def blank_prompts(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT405: a blank user or system message is almost always a data bug.

    >>> [p.code for p in blank_prompts({"messages": [{"role": "user", "content": " "},
    ...     {"role": "assistant", "content": "a"}]})]
    ['FT405']
    """
    for msg in _messages(record):
        if msg.role in ("user", "system") and _content_blank(msg.data.get("content")):
            yield _problem(
                "FT405",
                f"{msg.role} content is blank: fill it in or drop the message",
                ["messages", msg.index, "content"],
            )


def tool_call_ids(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT308/FT407: ids are exactly 9 of ``[a-zA-Z0-9]`` and unique in the conversation.

    >>> [p.code for p in tool_call_ids({"messages": [{"role": "assistant",
    ...     "tool_calls": [{"id": "call_1"}]}]})]
    ['FT308']
    """
    seen: set[str] = set()
    for msg in _messages(record):
        for j, call in _calls(msg):
            cid = call.get("id")
            if not isinstance(cid, str):
                continue
            if not TOOL_CALL_ID_RE.fullmatch(cid):
                yield _problem(
                    "FT308",
                    f"tool call id {_q(cid)} must be exactly 9 letters or digits, e.g. 'TX92Jm8Zi'",
                    ["messages", msg.index, "tool_calls", j, "id"],
                )
            if cid in seen:
                yield _problem(
                    "FT407",
                    f"tool call id {_q(cid)} is used twice in this conversation: "
                    "give each call its own id so each tool response answers one call",
                    ["messages", msg.index, "tool_calls", j, "id"],
                )
            seen.add(cid)
        if msg.role == "tool":
            tid = msg.data.get("tool_call_id")
            if isinstance(tid, str) and not TOOL_CALL_ID_RE.fullmatch(tid):
                yield _problem(
                    "FT308",
                    f"tool_call_id {_q(tid)} must be exactly 9 letters or digits, "
                    "the id of the call it answers",
                    ["messages", msg.index, "tool_call_id"],
                )


def _bad_name(name: object) -> bool:
    return isinstance(name, str) and not FUNCTION_NAME_RE.fullmatch(name)


def _name_message(name: str) -> str:
    return (
        f"function name {_q(name)} must be 1-64 characters from a-z, A-Z, 0-9, '_' and '-', "
        "e.g. 'get_weather'"
    )


def function_names(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT309: called, declared and tool-message function names follow Mistral's pattern.

    >>> [p.code for p in function_names({"tools": [{"function": {"name": "get weather"}}]})]
    ['FT309']
    """
    for k, fn in _tools(record):
        name = fn.get("name")
        if isinstance(name, str) and _bad_name(name):
            yield _problem("FT309", _name_message(name), ["tools", k, "function", "name"])
    for msg in _messages(record):
        for j, call in _calls(msg):
            call_fn = _function(call)
            name = call_fn.get("name") if call_fn else None
            if isinstance(name, str) and _bad_name(name):
                yield _problem(
                    "FT309",
                    _name_message(name),
                    ["messages", msg.index, "tool_calls", j, "function", "name"],
                )
        if msg.role == "tool":
            name = msg.data.get("name")
            if isinstance(name, str) and _bad_name(name):
                yield _problem("FT309", _name_message(name), ["messages", msg.index, "name"])


def _json_str(text: str) -> str:
    return orjson.dumps(clip(text, 60)).decode()


def _decode_error(e: orjson.JSONDecodeError) -> str:
    return clip(str(e.msg), 80)


def call_arguments(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT310/FT406: ``arguments`` is a JSON-encoded string of an object.

    >>> [p.code for p in call_arguments({"messages": [{"role": "assistant",
    ...     "tool_calls": [{"function": {"arguments": "{x"}}]}]})]
    ['FT310']
    """
    for msg in _messages(record):
        for j, call in _calls(msg):
            fn = _function(call)
            args = fn.get("arguments") if fn else None
            if not isinstance(args, str):
                continue
            path: list[str | int] = [
                "messages",
                msg.index,
                "tool_calls",
                j,
                "function",
                "arguments",
            ]
            try:
                value = orjson.loads(args)
            except orjson.JSONDecodeError as e:
                yield _problem(
                    "FT310",
                    f"arguments is not valid JSON ({_decode_error(e)}): it must be a "
                    'JSON-encoded string such as "{\\"city\\": \\"Lyon\\"}"',
                    path,
                )
                continue
            if not isinstance(value, dict):
                yield _problem(
                    "FT406",
                    f"arguments encodes a JSON {json_type(value)}, not an object: "
                    'function arguments are named, e.g. \'{"city": "Lyon"}\'',
                    path,
                )


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages.

    >>> json_type(None), json_type(True), json_type(1.5), json_type({})
    ('null', 'boolean', 'number', 'object')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def tool_responses(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT311/FT312: each tool message answers an earlier call, and counts pair up.

    The counting mirrors mistral-common's finetuning validator: the first message
    is not counted, an assistant message must come after every call of the previous
    assistant message was answered, more responses than calls is an error, and calls
    left unanswered at the end are allowed.

    >>> [p.code for p in tool_responses({"messages": [{"role": "user", "content": "q"},
    ...     {"role": "assistant", "content": "a"}, {"role": "tool", "tool_call_id": "Zz9Zz9Zz9",
    ...     "content": "r"}, {"role": "assistant", "content": "a"}]})]
    ['FT311', 'FT312']
    """
    msgs = _messages(record)
    called: set[str] = set()
    expected = 0
    pending_from: int | None = None
    for pos, msg in enumerate(msgs):
        if msg.role == "tool":
            tid = msg.data.get("tool_call_id")
            if isinstance(tid, str) and tid not in called:
                yield _problem(
                    "FT311",
                    f"tool_call_id {_q(tid)} answers no earlier tool call: use the id of "
                    "the assistant tool call this message responds to",
                    ["messages", msg.index, "tool_call_id"],
                )
            if pos > 0:
                expected -= 1
        elif msg.role == "assistant":
            if pos > 0 and expected > 0:
                yield _problem(
                    "FT312",
                    f"message {pending_from} made tool calls that were not all answered "
                    f"before this assistant message ({expected} missing): add one tool "
                    "message per call, right after the calls",
                    ["messages", msg.index],
                )
            elif pos > 0 and expected < 0:
                yield _problem(
                    "FT312",
                    f"{-expected} more tool message(s) than tool calls before this "
                    "assistant message: each tool message answers exactly one call",
                    ["messages", msg.index],
                )
            expected = 0
            pending_from = msg.index
            for _, call in _calls(msg):
                expected += 1
                if isinstance(cid := call.get("id"), str):
                    called.add(cid)
    if expected < 0 and msgs:
        yield _problem(
            "FT312",
            f"{-expected} more tool message(s) than tool calls at the end of the "
            "conversation: each tool message answers exactly one call",
            ["messages", msgs[-1].index],
        )


def declared_functions(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT313: every called function is declared under ``tools``.

    >>> [p.code for p in declared_functions({"messages": [{"role": "assistant",
    ...     "tool_calls": [{"function": {"name": "f"}}]}]})]
    ['FT313']
    """
    has_tools = isinstance(record.get("tools"), list)
    if "tools" in record and not has_tools:
        return  # the schema reports the malformed list
    declared = {fn.get("name") for _, fn in _tools(record)}
    for msg in _messages(record):
        for j, call in _calls(msg):
            fn = _function(call)
            name = fn.get("name") if fn else None
            if not isinstance(name, str) or name in declared:
                continue
            where = "in 'tools'" if has_tools else "because the record has no 'tools' list"
            yield _problem(
                "FT313",
                f"function {_q(name)} is called but not declared {where}: add "
                f'{{"type": "function", "function": {{"name": {_json_str(name)}, '
                "\"parameters\": {...}}} to 'tools'",
                ["messages", msg.index, "tool_calls", j, "function", "name"],
            )


_SCHEMA_CACHE: dict[bytes, str | None] = {}
_SCHEMA_CACHE_MAX = 512


#: A regular expression in a tool's parameters longer than this is not compiled:
#: compiling costs about a microsecond per character, and a record must not be
#: able to stall the validator for seconds.
MAX_PATTERN_CHARS = 10_000


@functools.cache
def _draft7_metaschema_validator() -> Any:
    from jsonschema import Draft7Validator, FormatChecker

    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft7Validator.FORMAT_CHECKER.checkers)

    def _regex(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if len(value) > MAX_PATTERN_CHARS:
            return False
        re.compile(value)
        return True

    checker.checks("regex", raises=re.error)(_regex)
    return Draft7Validator(Draft7Validator.META_SCHEMA, format_checker=checker)


def draft7_problem(parameters: dict[str, Any]) -> str | None:
    """What makes ``parameters`` an invalid Draft 7 schema (as mistral-common checks it).

    >>> draft7_problem({"type": "object"}) is None, draft7_problem({"type": "map"}) is None
    (True, False)
    """
    # Records of one file usually repeat the same tools: check each schema once.
    try:
        key: bytes | None = orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        key = None
    if key is not None and key in _SCHEMA_CACHE:
        return _SCHEMA_CACHE[key]
    from jsonschema.exceptions import best_match

    try:
        err = best_match(_draft7_metaschema_validator().iter_errors(parameters))
    except RecursionError:
        result: str | None = "nested too deeply"
    else:
        result = None
        if err is not None:
            where = json_path(list(err.absolute_path)).replace("$", "parameters", 1)
            if err.validator == "format":
                why = f"{_q(err.instance)} is not a valid {err.validator_value}"
                if isinstance(err.instance, str) and len(err.instance) > MAX_PATTERN_CHARS:
                    why += f" of at most {MAX_PATTERN_CHARS} characters"
            else:
                why = f"{_q(err.instance)} fails {err.validator!r} of the Draft 7 metaschema"
            result = f"{where}: {why}"
    if key is not None:
        if len(_SCHEMA_CACHE) >= _SCHEMA_CACHE_MAX:
            _SCHEMA_CACHE.clear()
        _SCHEMA_CACHE[key] = result
    return result


def tool_parameters(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT314: each declared ``parameters`` is a valid JSON Schema (Draft 7).

    >>> [p.code for p in tool_parameters({"tools": [{"function": {"name": "f",
    ...     "parameters": {"type": "map"}}}]})]
    ['FT314']
    """
    for k, fn in _tools(record):
        params = fn.get("parameters")
        if not isinstance(params, dict):
            continue
        problem = draft7_problem(params)
        if problem is not None:
            yield _problem(
                "FT314",
                f"parameters is not a valid JSON Schema (Draft 7): {problem}",
                ["tools", k, "function", "parameters"],
            )


def tools_list(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT409/FT410: one declaration per function, and no more tools than Mistral takes.

    >>> [p.code for p in tools_list({"tools": [{"function": {"name": "f"}},
    ...     {"function": {"name": "f"}}]})]
    ['FT409']
    """
    seen: set[str] = set()
    for k, fn in _tools(record):
        name = fn.get("name")
        if isinstance(name, str):
            if name in seen:
                yield _problem(
                    "FT409",
                    f"function {_q(name)} is declared twice in 'tools': keep one declaration",
                    ["tools", k, "function", "name"],
                )
            seen.add(name)
    tools = record.get("tools")
    if isinstance(tools, list) and len(tools) > MAX_TOOLS:
        yield _problem(
            "FT410",
            f"{len(tools)} tools declared; Mistral documents at most {MAX_TOOLS} per request",
            ["tools"],
        )


def system_messages(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT404: mistral-finetune allows one system message per conversation.

    >>> [p.code for p in system_messages({"messages": [{"role": "system", "content": "s"},
    ...     {"role": "system", "content": "t"}, {"role": "user", "content": "q"},
    ...     {"role": "assistant", "content": "a"}]})]
    ['FT404']
    """
    count = 0
    for msg in _messages(record):
        if msg.role == "system":
            count += 1
            if count == 2:
                yield _problem(
                    "FT404",
                    "more than one system message: mistral-finetune rejects this; "
                    "merge them into one system message at the start",
                    ["messages", msg.index],
                )


def _weight_is_zero(msg: _Msg) -> bool:
    w = msg.data.get("weight")
    return "weight" in msg.data and not isinstance(w, bool) and w == 0


def trainable(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT402/FT403: something in the record is trained on.

    >>> [p.code for p in trainable({"messages": [{"role": "user", "content": "q"},
    ...     {"role": "assistant", "content": "a", "weight": 0}]})]
    ['FT402']
    """
    assistants = [m for m in _messages(record) if m.role == "assistant"]
    if not assistants:
        return  # FT301 already says the conversation has no answer
    if all(_weight_is_zero(m) for m in assistants):
        yield _problem(
            "FT402",
            "every assistant message has weight 0: this record teaches nothing; "
            "set weight 1 (or drop weight) on the answers to learn, or drop the record",
            ["messages"],
        )
        return
    tools = record.get("tools")
    last = _messages(record)[-1]
    if isinstance(tools, list) and tools and last.role == "assistant" and _weight_is_zero(last):
        yield _problem(
            "FT403",
            "with tools present only the last assistant message is trained "
            "(mistral-finetune), and it has weight 0: nothing is learned from this record",
            ["messages", last.index, "weight"],
        )


def image_urls(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT413: images come inline (``data:``) or from an http(s) URL.

    >>> [p.code for p in image_urls({"messages": [{"role": "user",
    ...     "content": [{"type": "image_url", "image_url": "ftp://x"}]}]})]
    ['FT413']
    """
    for msg in _messages(record):
        content = msg.data.get("content")
        if msg.role != "user" or not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            url = part.get("image_url")
            path: list[str | int] = ["messages", msg.index, "content", j, "image_url"]
            if isinstance(url, dict):
                url = url.get("url")
                path.append("url")
            if isinstance(url, str) and not url.startswith(("data:", "https://", "http://")):
                yield _problem(
                    "FT413",
                    f"image URL {_q(url)} is neither a data: URI nor an http(s) URL: "
                    "embed the image as data:image/png;base64,... or link it over https",
                    path,
                )


def _unknown_top_level(fmt: str) -> Callable[[Mapping[str, Any]], Iterator[Problem]]:
    known = TOP_LEVEL_KEYS[fmt]

    def unknown_keys(record: Mapping[str, Any]) -> Iterator[Problem]:
        """FT408: keys the format does not define are ignored at best."""
        for key in record:
            if key not in known:
                yield _problem(
                    "FT408",
                    f"unknown top-level key {_q(key)} for the {fmt} format "
                    f"(known: {', '.join(sorted(known))}): Mistral may ignore or reject it; "
                    "remove it",
                    [key],
                )

    return unknown_keys


# ------------------------------------------------------------ pretrain/classifier


def text_not_blank(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT403: an empty document or text trains nothing.

    >>> [p.code for p in text_not_blank({"text": ""})]
    ['FT403']
    """
    text = record.get("text")
    if isinstance(text, str) and is_blank(text):
        yield _problem(
            "FT403", "text is blank: this record has nothing to learn; drop it", ["text"]
        )
    elif "text" not in record:
        msgs = _messages(record)
        blanks = [_content_blank(m.data.get("content")) for m in msgs]
        if msgs and all(b is True for b in blanks):
            yield _problem(
                "FT403",
                "every message is blank: this record has nothing to classify; drop it",
                ["messages"],
            )


def label_lists(record: Mapping[str, Any]) -> Iterator[Problem]:
    """FT412: a multi-label list names each label once.

    >>> [p.code for p in label_lists({"labels": {"topic": ["a", "a"]}})]
    ['FT412']
    """
    labels = record.get("labels")
    if not isinstance(labels, dict):
        return
    for name, value in labels.items():
        if not isinstance(value, list):
            continue
        seen: set[object] = set()
        for i, item in enumerate(value):
            if isinstance(item, str):
                if item in seen:
                    yield _problem(
                        "FT412",
                        f"label {_q(item)} is listed twice for {_q(name)}: list it once",
                        ["labels", name, i],
                    )
                seen.add(item)


RuleFunc = Callable[[Mapping[str, Any]], Iterator[Problem]]

CHAT_RULES: tuple[RuleFunc, ...] = (
    starts_with_system_or_user,
    role_order,
    last_message_is_assistant,
    weights,
    assistant_content_or_tool_calls,
    tool_call_ids,
    function_names,
    call_arguments,
    tool_responses,
    declared_functions,
    tool_parameters,
    tools_list,
    system_messages,
    blank_prompts,
    trainable,
    image_urls,
    _unknown_top_level("chat"),
)
PRETRAIN_RULES: tuple[RuleFunc, ...] = (text_not_blank, _unknown_top_level("pretrain"))
CLASSIFIER_RULES: tuple[RuleFunc, ...] = (
    text_not_blank,
    label_lists,
    _unknown_top_level("classifier"),
)


def _run(rules: tuple[RuleFunc, ...], record: Mapping[str, Any]) -> list[Problem]:
    return [p for rule in rules for p in rule(record)]


def check_chat_rules(record: Mapping[str, Any]) -> list[Problem]:
    """All of Mistral's chat rules on one record, in a stable order.

    >>> [p.code for p in check_chat_rules({"messages": [{"role": "user", "content": "q"},
    ...     {"role": "assistant", "content": "a"}], "id": 1})]
    ['FT408']
    """
    return _run(CHAT_RULES, record)


def check_pretrain_rules(record: Mapping[str, Any]) -> list[Problem]:
    """The pretrain format's rules on one record.

    >>> [p.code for p in check_pretrain_rules({"text": " "})]
    ['FT403']
    """
    return _run(PRETRAIN_RULES, record)


def check_classifier_rules(record: Mapping[str, Any]) -> list[Problem]:
    """The classifier format's rules on one record.

    >>> [p.code for p in check_classifier_rules({"text": "a", "labels": {"t": ["x", "x"]}})]
    ['FT412']
    """
    return _run(CLASSIFIER_RULES, record)
