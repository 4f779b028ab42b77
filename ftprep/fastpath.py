"""The fast path: "this line is a clean record" decided at parse speed.

Validating every record with jsonschema costs about 20x a plain parse. Most lines
of a real file are ordinary, clean records, so each built-in format first tries a
strict typed decode with msgspec (C code, about the cost of ``orjson.loads``) into
:class:`msgspec.Struct` classes that mirror the format's schema, but only its
plain, common shape: no tools, no content parts, no unknown keys, weights only
``0``/``1`` on assistant messages. The cheap cross-field rules then run on the
structs. Any doubt answers ``False`` and the caller takes the slow path
(:meth:`ftprep.formats.RecordChecker.check`), which is the reference.

The contract, checked by a differential test over the corpus and over generated
records: ``quick_*(raw) is True`` implies ``check(orjson.loads(raw)) == []``,
warnings included. msgspec rejects the same malformed JSON as orjson (invalid
UTF-8, lone surrogates, raw control characters, NaN, trailing data) and, like
orjson, keeps the last of duplicate keys; duplicate keys themselves are the
reader's business (FT112), not this module's.

>>> quick_chat(b'{"messages": [{"role": "user", "content": "hi"},'
...            b' {"role": "assistant", "content": "hello"}]}')
True
>>> quick_chat(b'{"messages": [{"role": "user", "content": "hi"}]}')  # FT301
False
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = ["chat_shape_ok", "quick_chat", "quick_classifier", "quick_pretrain"]


# gc=False: these structs hold only str/int/list and never form cycles, and keeping
# them away from the garbage collector is a measurable part of the speed.
class _System(Struct, tag_field="role", tag="system", forbid_unknown_fields=True, gc=False):
    content: str


class _User(Struct, tag_field="role", tag="user", forbid_unknown_fields=True, gc=False):
    content: str


class _Assistant(Struct, tag_field="role", tag="assistant", forbid_unknown_fields=True, gc=False):
    content: str
    # Only the JSON integers 0 and 1: 1.0, true or 0.5 fail the decode (slow path).
    weight: Literal[0, 1] | UnsetType = UNSET


class _Chat(Struct, forbid_unknown_fields=True, gc=False):
    messages: list[_System | _User | _Assistant]


class _Pretrain(Struct, forbid_unknown_fields=True, gc=False):
    text: str


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


def _blank(text: str) -> bool:
    # Same test as ftprep.rules.is_blank, inlined for speed.
    return not text or text.isspace()


def quick_chat(raw: bytes) -> bool:
    """True only for a plain chat record that the full check would pass untouched.

    >>> quick_chat(b'{"messages": [{"role": "user", "content": "hi"},'
    ...            b' {"role": "assistant", "content": "yo", "weight": 0}]}')  # FT402
    False
    """
    try:
        msgs = _CHAT.decode(raw).messages
    except Exception:
        return False
    # Written for speed (this loop runs once per line of every file): no helper
    # calls, class identity instead of isinstance.
    if not msgs or msgs[-1].__class__ is not _Assistant or msgs[0].__class__ is _Assistant:
        return False  # FT205 (no messages) / FT301 / FT302
    prev: type | None = None
    seen_system = False
    trained = False
    for m in msgs:
        content = m.content
        if not content or content.isspace():
            return False  # FT307/FT401 (assistant), FT405 (user, system)
        kind = m.__class__
        if kind is _Assistant:
            if m.weight != 0:  # type: ignore[union-attr]  # 1 or no weight: trained
                trained = True
        elif kind is _System:
            if seen_system or prev is _Assistant:
                return False  # FT404 / FT303 (assistant -> system)
            seen_system = True
        prev = kind
    return trained  # FT402 when every assistant message has weight 0


def quick_pretrain(raw: bytes) -> bool:
    """True only for ``{"text": <non-blank string>}``.

    >>> quick_pretrain(b'{"text": "A chain wears by elongating."}'), quick_pretrain(b'{"text": ""}')
    (True, False)
    """
    try:
        return not _blank(_PRETRAIN.decode(raw).text)
    except Exception:
        return False


def quick_classifier(raw: bytes) -> bool:
    """True only for a plain classifier record the full check would pass untouched.

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
        return True
    except Exception:
        return False


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
