"""What a record must be: the built-in formats, user schemas, and the checkers.

A :class:`RecordChecker` judges one record. The reader calls
:meth:`~RecordChecker.quick_ok` on the raw line first (the fast path of
:mod:`ftprep.fastpath`) and :meth:`~RecordChecker.check` on the parsed object
only when that says "not sure". ``check`` is the reference: JSON Schema (the
files in ``schemas/``) then Mistral's rules (:mod:`ftprep.rules`).

>>> checker = get_checker("chat")
>>> record = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}
>>> [(p.code, p.json_path) for p in checker.check(record)]
[('FT204', '$.messages[1].role')]
>>> detect_format({"text": "a document"})
'pretrain'

User schemas (``get_checker("my.schema.json")``) are untrusted input: they are
checked against their metaschema, their ``$ref`` never leave the file (plus
ftprep's own schemas, ``urn:ftprep:schema:chat`` etc., and the JSON Schema
metaschemas), and patterns that can take exponential time are refused.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JSONSchemaError
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from . import fastpath, rules
from .errors import SchemaError
from .problems import Problem, clip

__all__ = [
    "BUILTIN_FORMATS",
    "RecordChecker",
    "builtin_schema",
    "detect_format",
    "get_checker",
]

BUILTIN_FORMATS = ("chat", "pretrain", "classifier")
#: A user schema larger than this is refused: it is read whole and walked.
MAX_SCHEMA_BYTES = 5_000_000
#: Metaschemas a user schema may name in ``$schema``; the default is 2020-12.
_DRAFT_NAMES = {
    "Draft3Validator": "Draft 3",
    "Draft4Validator": "Draft 4",
    "Draft6Validator": "Draft 6",
    "Draft7Validator": "Draft 7",
    "Draft201909Validator": "Draft 2019-09",
    "Draft202012Validator": "Draft 2020-12",
}


class RecordChecker(Protocol):
    """Judges one record of a format (the interface the reader calls)."""

    #: ``"chat"``, ``"pretrain"``, ``"classifier"``, or the user schema's path.
    name: str

    def quick_ok(self, raw: bytes, colons: int | None = None, /) -> bool:
        """True only if orjson parses the line, :meth:`check` of the record would find
        nothing, and no object in the line has a duplicate key; never raises.

        ``colons``, when given, is the line's ``:`` count from
        :func:`ftprep._native.scan`, which also found the line valid UTF-8."""
        ...

    def check(self, record: dict[str, Any]) -> list[Problem]:
        """Every problem of a parsed record; ``line``/``column`` are left to the caller."""
        ...


# ------------------------------------------------------------------ builtin schemas


def _schema_bytes(name: str) -> bytes:
    # An installed wheel carries the schemas as ftprep/_schemas; a source checkout
    # (including an editable install) has them at the top-level schemas/.
    filename = f"{name}.schema.json"
    packaged = resources.files("ftprep").joinpath("_schemas", filename)
    if packaged.is_file():
        return packaged.read_bytes()
    return (Path(__file__).resolve().parent.parent / "schemas" / filename).read_bytes()


@functools.cache
def builtin_schema(name: str) -> Mapping[str, Any]:
    """The JSON Schema of a built-in format (do not mutate it).

    >>> builtin_schema("pretrain")["required"]
    ['text']
    """
    if name not in BUILTIN_FORMATS:
        raise SchemaError(f"unknown built-in format {name!r}")
    schema: dict[str, Any] = orjson.loads(_schema_bytes(name))
    return schema


@functools.cache
def _base_registry() -> Registry[Any]:
    """ftprep's own schemas and the JSON Schema metaschemas, all in memory.

    No retrieval function is set, so any other reference fails instead of being
    fetched: jsonschema's default registry would open http(s):// and file:// URLs.
    """
    from jsonschema_specifications import REGISTRY as METASCHEMAS

    registry: Registry[Any] = METASCHEMAS
    for name in BUILTIN_FORMATS:
        schema = builtin_schema(name)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return registry.crawl()


# ------------------------------------------------------------- schema error mapping


def _q(value: object, limit: int = 60) -> str:
    """A user value quoted for a message, never long (a 10 MB string stays short)."""
    if isinstance(value, str):
        return repr(clip(value, limit))
    if isinstance(value, dict | list):
        return f"<{rules.json_type(value)} of {len(value)}>"
    return clip(repr(value), limit)


def _or(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _types(value: object) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or ()]  # type: ignore[attr-defined]


def _branches(err: ValidationError) -> list[list[ValidationError]]:
    """The failed alternatives of an anyOf/oneOf, each with all of its errors.

    A nested anyOf/oneOf at the same spot (content: text or null, where text is a
    string or an array) is flattened into its own alternatives.
    """
    groups: dict[object, list[ValidationError]] = {}
    for sub in err.context or ():
        groups.setdefault(sub.relative_schema_path[0], []).append(sub)
    out: list[list[ValidationError]] = []
    for errors in groups.values():
        only = errors[0]
        if (
            len(errors) == 1
            and only.validator in ("anyOf", "oneOf")
            and not only.relative_path
            and only.context
        ):
            out.extend(_branches(only))
        else:
            out.append(errors)
    return out


def _at_spot(errors: list[ValidationError], keyword: str) -> bool:
    return all(e.validator == keyword and not e.relative_path for e in errors)


def _best(err: ValidationError) -> list[ValidationError] | list[str]:
    """Pick what to report for a failed anyOf/oneOf: best match first.

    Returns JSON type names when every alternative failed on its type alone
    ("expected string or array"); otherwise the errors of the alternative that got
    furthest into the value: one whose type matched beats one that did not, and
    among the rest the one with the deepest error wins (the first on a tie).
    """
    branches = _branches(err)
    if branches and all(_at_spot(b, "type") for b in branches):
        seen: dict[str, None] = {}
        for b in branches:
            for e in b:
                for t in _types(e.validator_value):
                    seen[t] = None
        return list(seen)
    candidates = [b for b in branches if not _at_spot(b, "type")] or branches
    return max(candidates, key=lambda b: max(len(e.relative_path) for e in b))


def _under_property_names(err: ValidationError) -> bool:
    path = list(err.absolute_schema_path)
    return len(path) >= 2 and path[-2] == "propertyNames"


def _extra_keys(err: ValidationError) -> list[str]:
    schema = err.schema if isinstance(err.schema, dict) else {}
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    instance = err.instance if isinstance(err.instance, dict) else {}
    return [
        k
        for k in instance
        if k not in props and not any(re.search(p, k) for p in patterns)  # patterns pre-checked
    ]


def _problem(code: str, message: str, path: Iterable[str | int]) -> Problem:
    return Problem(severity="error", code=code, message=message, json_path=rules.json_path(path))


def _describe(err: ValidationError) -> Iterator[Problem]:
    """Turn one jsonschema error into short problems, never quoting a value in full."""
    kw = err.validator
    value = err.validator_value
    inst = err.instance
    path: list[str | int] = list(err.absolute_path)
    if kw in ("anyOf", "oneOf"):
        if not err.context:
            yield _problem(
                "FT208",
                "matches more than one alternative of a oneOf; exactly one must match",
                path,
            )
            return
        branches = _branches(err)
        if branches and all(_at_spot(b, "required") for b in branches):
            keys = _or(
                repr(clip(str(k), 40)) for b in branches for e in b for k in e.validator_value
            )
            yield _problem("FT202", f"missing required key: one of {keys}", path)
            return
        best = _best(err)
        for item in best:
            if isinstance(item, str):
                types = _or(t for t in best if isinstance(t, str))
                yield _problem("FT201", f"expected {types}, got {rules.json_type(inst)}", path)
                return
            yield from _describe(item)
        return
    prefix = "key name: " if _under_property_names(err) else ""
    if kw == "type":
        message = f"{prefix}expected {_or(_types(value))}, got {rules.json_type(inst)}"
        # A schema's own description is the best hint a wrong type can get.
        description = err.schema.get("description") if isinstance(err.schema, dict) else None
        if isinstance(description, str):
            message += f": {clip(description, 160)}"
        yield _problem("FT201", message, path)
    elif kw == "required":
        missing = [k for k in value if isinstance(inst, dict) and k not in inst]
        keys = _or(repr(clip(k, 40)) for k in missing)
        yield _problem("FT202", f"missing required key {keys}", path)
    elif kw in ("dependentRequired", "dependencies"):
        yield _problem(
            "FT202", clip(f"{prefix}a key requires another key: {err.message}", 200), path
        )
    elif kw == "additionalProperties":
        allowed = list(err.schema.get("properties", {})) if isinstance(err.schema, dict) else []
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        for key in _extra_keys(err):
            yield _problem("FT203", clip(f"unknown key {_q(key, 40)}{hint}", 300), [*path, key])
    elif kw == "unevaluatedProperties":
        yield _problem("FT203", clip(err.message, 200), path)
    elif kw is None or value is False:
        yield _problem("FT203", f"{prefix}no value is allowed here", path)
    elif kw == "enum":
        choices = _or(_q(v, 30) for v in list(value)[:12])
        yield _problem(
            "FT204", clip(f"{prefix}{_q(inst)} is not allowed; expected {choices}", 300), path
        )
    elif kw == "const":
        yield _problem(
            "FT204", f"{prefix}{_q(inst)} is not allowed; expected {_q(value, 60)}", path
        )
    elif kw in ("minLength", "maxLength"):
        bound, need = ("at least", "required") if kw == "minLength" else ("at most", "allowed")
        yield _problem(
            "FT205", f"{prefix}string has {len(inst)} characters; {bound} {value} {need}", path
        )
    elif kw in ("minItems", "maxItems"):
        bound, need = ("at least", "required") if kw == "minItems" else ("at most", "allowed")
        yield _problem("FT205", f"array has {len(inst)} items; {bound} {value} {need}", path)
    elif kw in ("minProperties", "maxProperties"):
        bound, need = ("at least", "required") if kw == "minProperties" else ("at most", "allowed")
        yield _problem("FT205", f"object has {len(inst)} keys; {bound} {value} {need}", path)
    elif kw == "pattern":
        yield _problem(
            "FT206", f"{prefix}{_q(inst)} does not match the pattern {_q(value, 80)}", path
        )
    elif kw == "format":
        yield _problem("FT206", f"{prefix}{_q(inst)} is not a valid {_q(value, 40)}", path)
    elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        words = {
            "minimum": "is below the minimum",
            "maximum": "is above the maximum",
            "exclusiveMinimum": "must be greater than",
            "exclusiveMaximum": "must be less than",
            "multipleOf": "is not a multiple of",
        }
        yield _problem("FT207", f"{_q(inst)} {words[kw]} {_q(value)}", path)
    elif kw == "not" and isinstance(value, dict) and set(value) == {"required"}:
        keys = " and ".join(repr(clip(str(k), 40)) for k in value["required"])
        yield _problem("FT209", f"keys {keys} cannot appear together: keep one", path)
    elif kw == "not":
        yield _problem("FT209", f"{prefix}{_q(inst)} matches a schema it must not match", path)
    elif kw == "uniqueItems":
        yield _problem("FT209", "array items must be unique", path)
    elif kw in ("contains", "minContains", "maxContains"):
        yield _problem("FT209", f"array does not satisfy {kw!r}", path)
    else:
        yield _problem(
            "FT209", f"{prefix}{_q(inst)} fails the {clip(str(kw), 40)!r} constraint", path
        )


def _path_key(err: ValidationError) -> list[tuple[int, int | str]]:
    return [(0, p) if isinstance(p, int) else (1, p) for p in err.absolute_path]


def _schema_problems(validator: Validator, record: object) -> list[Problem]:
    try:
        errors = sorted(validator.iter_errors(record), key=_path_key)
    except Unresolvable as e:
        return [_problem("FT210", clip(f"the schema cannot be applied: {e}", 300), [])]
    except RecursionError:
        return [
            _problem("FT210", "the record is nested too deeply to check against the schema", [])
        ]
    out: dict[Problem, None] = {}  # ordered, and one report per missing key
    for err in errors:
        for p in _describe(err):
            out[p] = None
    return list(out)


# ----------------------------------------------------------------------- checkers


class _Quick(Protocol):
    def __call__(self, raw: bytes, colons: int | None = None, /) -> bool: ...


class _BuiltinChecker:
    def __init__(
        self,
        name: str,
        rule_check: Callable[[Mapping[str, Any]], list[Problem]],
        quick: _Quick,
        shape_ok: Callable[[object], bool] | None = None,
    ) -> None:
        self.name = name
        schema = builtin_schema(name)
        self._validator: Validator = Draft202012Validator(schema, registry=_base_registry())
        self._rules = rule_check
        # The fast path's function itself, not a method calling it: it runs per line.
        self.quick_ok = quick
        self._shape_ok = shape_ok

    def __repr__(self) -> str:
        return f"<RecordChecker {self.name}>"

    def check(self, record: dict[str, Any]) -> list[Problem]:
        if self._shape_ok is not None and self._shape_ok(record):
            problems: list[Problem] = []  # the schema would find nothing: skip its walk
        else:
            problems = _schema_problems(self._validator, record)
        if isinstance(record, dict):
            problems.extend(self._rules(record))
        return problems


class _SchemaChecker:
    """A user's JSON Schema, applied as it is (no Mistral rules: the user chose the rules)."""

    def __init__(self, name: str, validator: Validator) -> None:
        self.name = name
        self._validator = validator

    def __repr__(self) -> str:
        return f"<RecordChecker {self.name}>"

    def quick_ok(self, raw: bytes, colons: int | None = None, /) -> bool:
        # No safe shortcut for an arbitrary schema: every record takes the full check.
        return False

    def check(self, record: dict[str, Any]) -> list[Problem]:
        return _schema_problems(self._validator, record)


@functools.cache
def _builtin_checker(name: str) -> RecordChecker:
    if name == "chat":
        return _BuiltinChecker(
            name, rules.check_chat_rules, fastpath.quick_chat, fastpath.chat_shape_ok
        )
    if name == "pretrain":
        return _BuiltinChecker(name, rules.check_pretrain_rules, fastpath.quick_pretrain)
    return _BuiltinChecker(name, rules.check_classifier_rules, fastpath.quick_classifier)


def detect_format(record: object) -> str | None:
    """Tell the built-in formats apart by their keys; None when none fits.

    >>> detect_format({"messages": []}), detect_format({"text": "t", "labels": {}})
    ('chat', 'classifier')
    >>> detect_format(["not", "an", "object"]) is None
    True
    """
    if not isinstance(record, dict):
        return None
    if "labels" in record and ("text" in record or "messages" in record):
        return "classifier"
    if "messages" in record:
        return "chat"
    if "text" in record:
        return "pretrain"
    return None


_USER_CACHE: dict[tuple[str, int, int], RecordChecker] = {}


def get_checker(schema: str) -> RecordChecker:
    """The checker for a built-in format name or a path to a user's JSON Schema file.

    Raises :class:`ftprep.errors.SchemaError` naming the file and the problem when a
    user schema cannot be used. Checkers are cached per process (per file content
    for user schemas: a changed file is loaded again).

    >>> get_checker("classifier").name
    'classifier'
    """
    if schema in BUILTIN_FORMATS:
        return _builtin_checker(schema)
    if schema == "auto":
        raise SchemaError(
            "'auto' picks a format per file: call get_checker with the detected format"
        )
    path = Path(schema)
    if not path.suffix and "/" not in schema and "\\" not in schema:
        raise SchemaError(
            f"unknown schema {schema!r}: use auto, chat, pretrain, classifier "
            "or the path to a JSON Schema file"
        )
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SchemaError(f"{schema}: schema file not found") from None
    except OSError as e:
        raise SchemaError(f"{schema}: cannot read the schema file ({e.strerror})") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    checker = _USER_CACHE.get(key)
    if checker is None:
        checker = _SchemaChecker(schema, _load_user_schema(schema, path))
        _USER_CACHE[key] = checker
    return checker


# -------------------------------------------------------------------- user schemas


def _load_user_schema(name: str, path: Path) -> Validator:
    if not path.is_file():
        raise SchemaError(f"{name}: not a regular file")
    if path.stat().st_size > MAX_SCHEMA_BYTES:
        raise SchemaError(
            f"{name}: schema file is over {MAX_SCHEMA_BYTES // 1_000_000} MB; "
            "a record schema this large is not supported"
        )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SchemaError(f"{name}: cannot read the schema file ({e.strerror})") from None
    try:
        schema = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise SchemaError(
            f"{name}: not valid JSON at line {e.lineno} column {e.colno}: {clip(e.msg, 100)}"
        ) from None
    if not isinstance(schema, dict | bool):
        raise SchemaError(f"{name}: a JSON Schema must be an object (or true/false)")

    cls: type[Validator] | None = validator_for(schema, default=None)
    if cls is None:
        if isinstance(schema, dict) and "$schema" in schema:
            raise SchemaError(
                f"{name}: unknown $schema {_q(schema['$schema'], 100)}: use "
                "'https://json-schema.org/draft/2020-12/schema' or "
                "'http://json-schema.org/draft-07/schema#'"
            )
        cls = Draft202012Validator
    draft = _DRAFT_NAMES.get(cls.__name__, cls.__name__)
    try:
        cls.check_schema(schema)
    except JSONSchemaError as e:
        where = "/" + "/".join(str(p) for p in e.absolute_path)
        if e.validator == "format":
            why = f"{_q(e.instance, 80)} is not a valid {e.validator_value}"
        else:
            why = f"{_q(e.instance, 80)} fails {e.validator!r} of the metaschema"
        raise SchemaError(f"{name}: not a valid {draft} schema at {where}: {why}") from None
    except RecursionError:
        raise SchemaError(f"{name}: the schema is nested too deeply") from None

    resource = Resource.from_contents(schema, default_specification=DRAFT202012)
    root_uri = resource.id() or "urn:ftprep:user-schema"
    registry = _base_registry().with_resource(root_uri, resource).crawl()
    _check_subschemas(name, schema, resource, registry.resolver(base_uri=root_uri))
    return cls(schema, registry=registry)


def _pointers(node: object, pointer: str, out: dict[int, str]) -> None:
    if isinstance(node, dict):
        out.setdefault(id(node), pointer or "/")
        for k, v in node.items():
            _pointers(v, f"{pointer}/{k}", out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _pointers(v, f"{pointer}/{i}", out)


def _check_subschemas(name: str, schema: object, root: Resource[Any], resolver: Any) -> None:
    """Refuse references that leave the file and patterns that can run for ages.

    Walks the schema the way its draft defines subschemas (so a ``$ref`` inside
    ``const`` or ``examples`` is data, not a reference), resolving every ``$ref``
    against the in-memory registry only.
    """
    where: dict[int, str] = {}
    try:
        _pointers(schema, "", where)
    except RecursionError:
        raise SchemaError(f"{name}: the schema is nested too deeply") from None
    stack: list[tuple[Resource[Any], Any]] = [(root, resolver)]
    while stack:
        resource, res = stack.pop()
        contents = resource.contents
        if isinstance(contents, dict):
            at = where.get(id(contents), "?")
            for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
                ref = contents.get(keyword)
                if not isinstance(ref, str):
                    continue
                try:
                    res.lookup(ref)
                except Unresolvable:
                    if ref.startswith("#"):
                        raise SchemaError(
                            f"{name}: {keyword} {_q(ref, 100)} at {at} points to nothing "
                            "in the schema"
                        ) from None
                    raise SchemaError(
                        f"{name}: remote references are disabled: {keyword} {_q(ref, 100)} "
                        f"at {at} does not resolve inside the schema file; inline the "
                        "referenced schema under $defs (ftprep's urn:ftprep:schema:chat, "
                        ":pretrain and :classifier may be referenced)"
                    ) from None
            patterns: list[tuple[str, object]] = [("pattern", contents.get("pattern"))]
            props = contents.get("patternProperties")
            if isinstance(props, dict):
                patterns.extend(("patternProperties", p) for p in props)
            for keyword, pattern in patterns:
                if isinstance(pattern, str):
                    _check_pattern(name, keyword, pattern, at)
        for sub in resource.subresources():
            stack.append((sub, res.in_subresource(sub)))


def _check_pattern(name: str, keyword: str, pattern: str, at: str) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise SchemaError(
            f"{name}: {keyword} {_q(pattern, 80)} at {at} is not a valid regular expression "
            f"({e.msg})"
        ) from None
    except RecursionError:
        raise SchemaError(f"{name}: {keyword} at {at} is nested too deeply") from None
    if _nested_quantifier(pattern):
        raise SchemaError(
            f"{name}: {keyword} {_q(pattern, 80)} at {at} repeats a group that itself repeats "
            "a variable amount (like '(a+)+'), which can take exponential time on some "
            "strings; rewrite it without the nesting (e.g. 'a+')"
        )


def _nested_quantifier(pattern: str) -> bool:
    """True when a repeated part contains a variable-length repeat: ``(a+)+``, ``(\\w+\\s?)*``.

    The classic catastrophic-backtracking shape. Overlapping alternations like
    ``(a|a)+`` are not caught. Uses the stdlib's regex parser; if that internal
    module ever changes, the check is skipped rather than refusing every schema.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        c: Any = importlib.import_module("re._constants")
        tree = parser.parse(pattern)
    except Exception:
        return False
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT}

    def walk(items: Iterable[tuple[Any, Any]], in_repeat: bool) -> bool:
        for op, av in items:
            if op in repeats:
                low, high, sub = av
                if in_repeat and low != high:
                    return True
                if walk(sub, in_repeat or high > 1):
                    return True
            elif op == c.SUBPATTERN:
                if walk(av[3], in_repeat):
                    return True
            elif op == c.BRANCH:
                if any(walk(alt, in_repeat) for alt in av[1]):
                    return True
            elif op in (c.ASSERT, c.ASSERT_NOT):
                if walk(av[1], in_repeat):
                    return True
            elif op == c.GROUPREF_EXISTS:
                if any(walk(alt, in_repeat) for alt in av[1:] if alt is not None):
                    return True
        return False

    try:
        return walk(tree, False)
    except Exception:
        return False
