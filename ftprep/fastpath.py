"""The fast path: "this line is a clean record" decided at parse speed.

Validating every record with jsonschema costs about 20x a plain parse. Most lines
of a real file are ordinary, clean records, so each built-in format first tries a
strict typed decode with msgspec (C code, cheaper than ``orjson.loads`` because long
strings stay undecoded ``Raw`` bytes) into :class:`msgspec.Struct` classes that
mirror the format's schema, but only its common shape: string content, tools with
tool calls and tool messages, no content parts or images, no unknown keys, weights
only ``0``/``1`` on assistant messages. Mistral's rules then run on the structs
(the Draft 7 check of a tool's ``parameters`` once per distinct definition). Any
doubt answers ``False`` and the caller takes the slow path
(:meth:`ftprep.formats.RecordChecker.check`), which is the reference.

The contract, checked by a differential test over the corpus and over generated
records: ``quick_*(raw) is True`` implies that orjson parses the line, that
``check(orjson.loads(raw)) == []`` (warnings included), and that no object of the
line has a duplicate key (FT112), so the reader skips its duplicate-key parse for
these lines. msgspec rejects the same malformed JSON as orjson (lone surrogates,
raw control characters, NaN, trailing data; UTF-8 is checked here, as ``Raw``
values skip it) and, like orjson, keeps the last of duplicate keys: duplicates
are ruled out by counting colons (see :func:`quick_chat`). The byte passes (UTF-8,
colons) are :mod:`ftprep._native`'s, in C where it was built; the validator runs
them once per line and hands the colon count in.

>>> quick_chat(b'{"messages": [{"role": "user", "content": "hi"},'
...            b' {"role": "assistant", "content": "hello"}]}')
True
>>> quick_chat(b'{"messages": [{"role": "user", "content": "hi"}]}')  # FT301
False
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import jiter
import msgspec
import orjson
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from ._native import colons as _colons
from ._native import scan as _scan
from ._native import string_facts as _facts

__all__ = ["chat_shape_ok", "quick_chat", "quick_classifier", "quick_pretrain"]

_V = TypeVar("_V")


# gc=False: these structs hold only str/int/list/Raw and never form cycles, and keeping
# them away from the garbage collector is a measurable part of the speed.
#
# Message content is decoded as msgspec.Raw: the bytes of the JSON value, checked for
# JSON syntax (escapes, surrogate pairs, control characters) but not turned into a
# str. Building the strings is most of a decode's cost, and the rules only need to
# know that content is a non-blank string. Raw skips the UTF-8 check, so the line's
# UTF-8 is checked by _native.scan (by the validator, or by quick_chat itself).
class _System(Struct, tag_field="role", tag="system", forbid_unknown_fields=True, gc=False):
    content: Raw


class _User(Struct, tag_field="role", tag="user", forbid_unknown_fields=True, gc=False):
    content: Raw


class _FastFunctionCall(Struct, forbid_unknown_fields=True, gc=False):
    name: str
    arguments: Raw  # a JSON string holding a JSON object


class _FastToolCall(Struct, forbid_unknown_fields=True, gc=False):
    id: str
    function: _FastFunctionCall
    type: Literal["function"] | UnsetType = UNSET


class _Assistant(Struct, tag_field="role", tag="assistant", forbid_unknown_fields=True, gc=False):
    content: Raw | UnsetType = UNSET
    tool_calls: list[_FastToolCall] | UnsetType = UNSET
    # Only the JSON integers 0 and 1: 1.0, true or 0.5 fail the decode (slow path).
    weight: Literal[0, 1] | UnsetType = UNSET


class _ToolReply(Struct, tag_field="role", tag="tool", forbid_unknown_fields=True, gc=False):
    content: Raw
    tool_call_id: str
    name: str | UnsetType = UNSET


class _Declared(Struct, forbid_unknown_fields=True, gc=False):
    name: str
    parameters: Raw
    description: Raw | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class _ToolDef(Struct, forbid_unknown_fields=True, gc=False):
    function: _Declared
    type: Literal["function"] | UnsetType = UNSET


class _Chat(Struct, forbid_unknown_fields=True, gc=False):
    messages: list[_System | _User | _Assistant | _ToolReply]
    # Raw: records repeat the same tools, which are decoded and judged once (_toolset).
    tools: Raw | UnsetType = UNSET


class _Pretrain(Struct, forbid_unknown_fields=True, gc=False):
    text: Raw


class _ClassifierMessage(Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["system", "user", "assistant"]
    content: str


class _Classifier(Struct, forbid_unknown_fields=True, gc=False):
    labels: dict[str, str | list[str]]
    text: str | UnsetType = UNSET
    messages: list[_ClassifierMessage] | UnsetType = UNSET


_CHAT = msgspec.json.Decoder(_Chat)
_PRETRAIN = msgspec.json.Decoder(_Pretrain)
_CLASSIFIER = msgspec.json.Decoder(_Classifier)
_STR = msgspec.json.Decoder(str)


def _blank(text: str) -> bool:
    # Same test as ftprep.rules.is_blank, inlined for speed.
    return not text or text.isspace()


# A Raw string value is judged by _facts (ftprep._native.string_facts): its low two
# bits are 0 when the first bytes prove a non-blank string (most strings), 1 for a
# string to decode and test, 2 for content parts, null, a number (the slow path's);
# the rest is its colon count. The loops below inline the test
#     facts & 3 and (facts & 3 == 2 or _blank(_STR.decode(value)))
# which is true for anything but a non-blank string.


#: Distinct ``parameters`` of declared tools seen, by their bytes: the number of keys
#: and of colons inside them, or None when they would draw a problem. Datasets repeat a few tool
#: definitions on every record, so the Draft 7 metaschema check runs once for each.
_PARAMS: dict[bytes, tuple[int, int] | None] = {}
_PARAMS_MAX = 512
#: Larger values are judged each time, not kept: the caches stay a few MB at most.
_CACHE_BYTES = 16 * 1024


def _remember(cache: dict[bytes, _V], key: bytes, value: _V) -> _V:
    """Keep ``value`` under ``key`` in one of the fast path's bounded caches."""
    if len(key) <= _CACHE_BYTES:
        if len(cache) >= _PARAMS_MAX:
            cache.clear()
        cache[key] = value
    return value


#: Deepest ``parameters`` the fast path takes: with the levels above it the record
#: stays far below the validator's nesting limit (FT107), which it then need not check.
_PARAMS_DEPTH = 48


def _params_keys(raw: bytes) -> tuple[int, int] | None:
    """Keys and colons inside a tool's ``parameters`` if it is a clean Draft 7 schema."""
    from . import rules  # rules imports jsonschema lazily; keep this module light

    try:
        value = orjson.loads(raw)
        jiter.from_json(raw, catch_duplicate_keys=True, cache_mode=False)
    except ValueError:  # orjson.JSONDecodeError is a ValueError, and so is jiter's
        return None
    if not isinstance(value, dict):
        return None
    keys = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _PARAMS_DEPTH:
            return None
        if isinstance(node, dict):
            keys += len(node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    if rules.draft7_problem(value) is not None:
        return None
    return keys, _colons(raw)


_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Function names seen to match _NAME: a dataset repeats a few of them on every record.
_GOOD_NAMES: set[str] = set()


def _good_name(name: str) -> bool:
    if name in _GOOD_NAMES:
        return True
    if _NAME.fullmatch(name) is None:
        return False
    if len(_GOOD_NAMES) >= _PARAMS_MAX:
        _GOOD_NAMES.clear()
    _GOOD_NAMES.add(name)
    return True


_TOOLS = msgspec.json.Decoder(list[_ToolDef])
#: What a record's ``tools`` array gives the fast path, by its bytes: the names
#: declared, the keys inside it, and the colons inside its strings; None when the
#: slow path should judge it. Datasets repeat one or a few arrays on every record.
_TOOLSETS: dict[bytes, tuple[frozenset[str], int, int] | None] = {}
_UNSEEN = (frozenset[str](), -1, -1)


def _toolset(raw: bytes) -> tuple[frozenset[str], int, int] | None:
    """Names, keys and string colons of a clean ``tools`` array; None otherwise."""
    try:
        tools = _TOOLS.decode(raw)
    except Exception:
        return None
    if not tools or len(tools) > 128:
        return None  # an empty list is unusual; FT410 above 128
    keys = 0
    in_strings = 0  # colons inside its strings (parameters' keys included)
    declared: set[str] = set()
    for tool in tools:
        fn = tool.function
        name = fn.name
        if name in declared or _NAME.fullmatch(name) is None:
            return None  # FT409 / FT309
        declared.add(name)
        params = bytes(fn.parameters)
        if params in _PARAMS:
            inside = _PARAMS[params]
        else:
            inside = _remember(_PARAMS, params, _params_keys(params))
        if inside is None:
            return None  # FT314, or anything else the slow path should judge
        in_strings += inside[1] - inside[0]
        keys += inside[0] + 3 + (tool.type is not UNSET) + (fn.strict is not UNSET)
        description = fn.description
        if description is not UNSET:
            facts = _facts(description)
            if facts & 3 == 2:
                return None  # not a string: FT201
            in_strings += facts >> 2
            keys += 1
    return frozenset(declared), keys, in_strings


def _line_colons(raw: bytes) -> int | None:
    """The line's ``:`` count, or None when it is not valid UTF-8."""
    scanned = _scan(raw)
    return None if scanned is None else scanned[0]


def quick_chat(raw: bytes, colons: int | None = None) -> bool:
    """True only for a chat record that the full check would pass untouched, with no
    duplicate key in it. ``colons`` is the line's ``:`` count from
    :func:`ftprep._native.scan`, which also proved the line valid UTF-8; without it
    the line is scanned here.

    >>> quick_chat(b'{"messages": [{"role": "user", "content": "hi"},'
    ...            b' {"role": "assistant", "content": "yo", "weight": 0}]}')  # FT402
    False
    >>> quick_chat(b'{"messages": [{"role": "user", "content": "hi", "content": "hi"},'
    ...            b' {"role": "assistant", "content": "yo"}]}')  # FT112
    False
    """
    if colons is None:
        colons = _line_colons(raw)
        if colons is None:
            return False  # not UTF-8: Raw values skip the check, so it is made here
    try:
        rec = _CHAT.decode(raw)
    except Exception:
        return False
    # Any: the loop tells the message classes apart itself, by identity.
    msgs: list[Any] = rec.messages
    # Written for speed (this loop runs once per line of every file): no helper
    # calls, class identity instead of isinstance.
    if not msgs or msgs[-1].__class__ is not _Assistant:
        return False  # FT205 (no messages) / FT301
    first = msgs[0].__class__
    if first is not _User and first is not _System:
        return False  # FT302
    tools = rec.tools
    if tools is UNSET:
        # The common record, checked in a loop of its own. With no tools declared a
        # tool call draws FT313 and a tool message has no call to answer (FT311), so
        # every message that passes holds "role", a plain string "content" and maybe
        # a "weight": the key count follows from the message count.
        last: type = _User
        seen_system = False
        trained = False
        weights = 0
        in_strings = 0
        for m in msgs:
            kind = m.__class__
            content = m.content
            if content is UNSET:
                return False  # FT307 / FT313
            # A non-blank string; its colons count for the proof below.
            facts = _facts(content)
            if facts & 3 and (facts & 3 == 2 or _blank(_STR.decode(content))):
                return False  # FT405 / FT401 / not a plain string
            in_strings += facts >> 2
            if kind is _Assistant:
                if m.tool_calls is not UNSET:
                    return False  # FT313 (and FT306 with content)
                weight = m.weight
                if weight is UNSET:
                    trained = True
                else:
                    weights += 1
                    if weight:
                        trained = True
            elif kind is _System:
                if seen_system or last is _Assistant:
                    return False  # FT404 / FT303
                seen_system = True
            elif kind is _ToolReply:
                return False  # FT311
            last = kind
        if not trained:
            return False  # FT402
        # No duplicate key: see the proof at the end of this function. The only strings
        # here are the keys, the role tags and the contents.
        return colons == 1 + 2 * len(msgs) + weights + in_strings
    tools_bytes = bytes(tools)
    toolset = _TOOLSETS.get(tools_bytes, _UNSEEN)
    if toolset is _UNSEEN:
        toolset = _remember(_TOOLSETS, tools_bytes, _toolset(tools_bytes))
    if toolset is None:
        return False  # the slow path names the problem
    declared, tool_keys, in_strings = toolset
    # Keys the decoded structure holds: "messages", "tools", each message's keys, and so on.
    keys = 2 + tool_keys
    prev: type = _User
    seen_system = False
    trained = False
    called: set[str] = set()
    expected = 0  # tool calls of the last assistant message not answered yet
    last_weight: int | UnsetType = UNSET
    for m in msgs:
        kind = m.__class__
        if kind is _Assistant:
            if expected:
                return False  # FT312
            calls = m.tool_calls
            content = m.content
            if calls is UNSET:
                if content is UNSET:
                    return False  # FT307
                facts = _facts(content)  # a non-blank string
                if facts & 3 and (facts & 3 == 2 or _blank(_STR.decode(content))):
                    return False  # FT401 / not a plain string
                in_strings += facts >> 2
                keys += 2
            else:
                if not calls or content is not UNSET:
                    return False  # FT411 / FT306
                keys += 2
                for call in calls:
                    cid = call.id
                    fn_call = call.function
                    # [a-zA-Z0-9]{9}: isalnum alone would pass non-ASCII letters.
                    if cid in called or len(cid) != 9 or not cid.isascii() or not cid.isalnum():
                        return False  # FT407 / FT308
                    if fn_call.name not in declared:
                        return False  # FT313 (declared names are valid: FT309)
                    arguments = fn_call.arguments
                    try:
                        args = orjson.loads(_STR.decode(arguments))
                    except (orjson.JSONDecodeError, msgspec.ValidationError):
                        return False  # FT310 / not a string (FT201)
                    if args.__class__ is not dict:
                        return False  # FT406
                    # The bytes' colons, not the decoded text's: an escape (\u003a) may
                    # stand for one.
                    in_strings += _colons(arguments)
                    called.add(cid)
                    keys += 4 + (call.type is not UNSET)
                expected = len(calls)
            last_weight = m.weight
            if last_weight is UNSET:
                trained = True
            else:
                keys += 1
                if last_weight:
                    trained = True
        elif kind is _ToolReply:
            if prev is not _Assistant and prev is not _ToolReply:
                return False  # FT303
            if m.tool_call_id not in called:
                return False  # FT311 (and FT308: every called id is valid)
            name = m.name
            if name is not UNSET:
                if not _good_name(name):
                    return False  # FT309
                keys += 1
            facts = _facts(m.content)
            if facts & 3 == 2:
                return False  # content parts: the slow path
            in_strings += facts >> 2  # tool results are often JSON text
            expected -= 1
            keys += 3
        else:
            content = m.content
            facts = _facts(content)  # a non-blank string
            if facts & 3 and (facts & 3 == 2 or _blank(_STR.decode(content))):
                return False  # FT405 / not a plain string
            in_strings += facts >> 2
            if kind is _System:
                if seen_system or prev is _Assistant or prev is _ToolReply:
                    return False  # FT404 / FT303
                seen_system = True
            keys += 2
        prev = kind
    if expected < 0 or not trained:
        return False  # FT312 / FT402 (every assistant message has weight 0)
    if last_weight == 0:
        return False  # FT403
    # No duplicate key (FT112). In JSON that parses, a colon byte is either the one
    # after a key or part of a string (UTF-8 never uses 0x3A inside a multi-byte
    # character). So the line's colons = key tokens + colons inside strings, and key
    # tokens = the keys decoded (``keys``) + duplicates. ``in_strings`` holds the
    # colons of every string that may have one, counted on the bytes (an escape such
    # as \u003a is no colon byte): contents, arguments, descriptions, and parameters
    # whole (their colons minus their keys). The other strings cannot: keys outside
    # parameters are field names, ids and names match patterns without a colon, and
    # role and type values are fixed words. Equal counts prove there is no duplicate.
    return colons == keys + in_strings


def quick_pretrain(raw: bytes, colons: int | None = None) -> bool:
    """True only for ``{"text": <non-blank string>}`` (``colons``: see :func:`quick_chat`).

    >>> quick_pretrain(b'{"text": "A chain wears by elongating."}'), quick_pretrain(b'{"text": ""}')
    (True, False)
    """
    if colons is None:
        colons = _line_colons(raw)
        if colons is None:
            return False  # not UTF-8 (Raw skips the check)
    try:
        text = _PRETRAIN.decode(raw).text
        facts = _facts(text)
        if facts & 3 and (facts & 3 == 2 or _blank(_STR.decode(text))):
            return False  # FT403, or not a string
    except Exception:
        return False
    # No duplicate key: the one key's colon plus the text's own (see quick_chat).
    return colons == 1 + (facts >> 2)


def quick_classifier(raw: bytes, colons: int | None = None) -> bool:
    """True only for a plain classifier record the full check would pass untouched
    (``colons``: see :func:`quick_chat`).

    >>> quick_classifier(b'{"text": "Brakes squeal.", "labels": {"topic": ["brakes"]}}')
    True
    """
    try:
        rec = _CLASSIFIER.decode(raw)
        if rec.text is UNSET:
            if rec.messages is UNSET or not rec.messages:
                return False  # FT202 / FT205
            if all(_blank(m.content) for m in rec.messages):
                return False  # FT403
        elif rec.messages is not UNSET or _blank(rec.text):
            return False  # FT209 (text and messages) / FT403
        if not rec.labels:
            return False  # FT205: at least one target
        for name, value in rec.labels.items():
            if not name:
                return False  # FT205: a target needs a name
            if isinstance(value, str):
                if not value:
                    return False
            elif not value or "" in value or len(set(value)) != len(value):
                return False  # FT205 / FT412
    except Exception:
        return False
    # No duplicate key: a line has at least one colon per key token (see quick_chat),
    # so as many colons as the keys decoded proves there is no other. Lines with
    # colons inside strings take the slow path.
    keys = 2 + len(rec.labels) + (0 if rec.messages is UNSET else 2 * len(rec.messages))
    return (_colons(raw) if colons is None else colons) == keys


# ------------------------------------------------------------- the chat schema's shape
#
# A second set of structs mirrors the whole chat schema (schemas/chat.schema.json):
# tools, content parts, tool messages and all. It is used on records the fast path
# declined: when a parsed record converts, the schema has nothing to say and only
# Mistral's rules need to run, which spares the jsonschema walk (about 2-3 MB/s) on
# valid records with tools or images. A record that does not convert goes to
# jsonschema, which then explains what is wrong. A test holds the two to agreement.


class _TextPart(Struct, tag_field="type", tag="text", forbid_unknown_fields=True):
    text: str


# Outside a union msgspec takes a tagged struct without its tag: where text parts
# stand alone the type is a plain required field.
class _TextOnlyPart(Struct, forbid_unknown_fields=True):
    type: Literal["text"]
    text: str


class _ImageURL(Struct, forbid_unknown_fields=True):
    url: str
    detail: str | UnsetType | None = UNSET


class _ImagePart(Struct, tag_field="type", tag="image_url", forbid_unknown_fields=True):
    image_url: str | _ImageURL


class _FunctionCall(Struct, forbid_unknown_fields=True):
    name: str
    arguments: str


class _ToolCall(Struct, forbid_unknown_fields=True):
    id: str
    function: _FunctionCall
    type: Literal["function"] | UnsetType = UNSET


# weight is any number here, on any role, as in the schema: rules FT304/FT305 judge it.
class _SystemShape(Struct, tag_field="role", tag="system", forbid_unknown_fields=True):
    content: str | list[_TextOnlyPart]
    weight: float | UnsetType = UNSET


class _UserShape(Struct, tag_field="role", tag="user", forbid_unknown_fields=True):
    content: str | list[_TextPart | _ImagePart]
    weight: float | UnsetType = UNSET


class _AssistantShape(Struct, tag_field="role", tag="assistant", forbid_unknown_fields=True):
    content: str | list[_TextOnlyPart] | UnsetType | None = UNSET
    tool_calls: list[_ToolCall] | UnsetType = UNSET
    weight: float | UnsetType = UNSET


class _ToolShape(Struct, tag_field="role", tag="tool", forbid_unknown_fields=True):
    content: str | list[_TextOnlyPart]
    tool_call_id: str
    name: str | UnsetType = UNSET
    weight: float | UnsetType = UNSET


class _Function(Struct, forbid_unknown_fields=True):
    name: str
    parameters: dict[str, Any]
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class _Tool(Struct, forbid_unknown_fields=True):
    function: _Function
    type: Literal["function"] | UnsetType = UNSET


# Unknown top-level keys are allowed by the schema (FT408 warns about them).
class _ChatShape(Struct):
    messages: Annotated[
        list[_SystemShape | _UserShape | _AssistantShape | _ToolShape], Meta(min_length=1)
    ]
    tools: list[_Tool] | UnsetType = UNSET


def chat_shape_ok(record: object) -> bool:
    """True only when the chat JSON Schema would find nothing wrong with ``record``.

    >>> chat_shape_ok({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    True
    >>> chat_shape_ok({"messages": [{"role": "bot", "content": "hi"}]})
    False
    """
    try:
        msgspec.convert(record, _ChatShape)
    except Exception:
        return False
    return True
