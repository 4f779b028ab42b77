"""Loading schemas: the built-in ones (also from an installed layout) and untrusted user files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ftprep.errors import SchemaError, UsageError
from ftprep.formats import BUILTIN_FORMATS, builtin_schema, get_checker

REPO = Path(__file__).resolve().parent.parent.parent
OK_CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def write_schema(tmp_path: Path, schema: object, name: str = "schema.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(schema), encoding="utf-8")
    return str(path)


def codes(schema: str, record: dict[str, Any]) -> list[str]:
    return [p.code for p in get_checker(schema).check(record)]


# ------------------------------------------------------------------------ built-in


@pytest.mark.parametrize("name", BUILTIN_FORMATS)
def test_builtin_schemas_are_valid_2020_12_with_their_own_urn(name: str) -> None:
    schema = builtin_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:ftprep:schema:{name}"
    assert get_checker(name).name == name


def test_builtin_schemas_load_from_an_installed_layout_without_the_source_tree(
    tmp_path: Path,
) -> None:
    # The wheel maps schemas/ to ftprep/_schemas; rebuild that layout by hand and
    # run a real interpreter on it, away from the checkout.
    site = tmp_path / "site"
    shutil.copytree(REPO / "ftprep", site / "ftprep", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import ftprep, ftprep.formats as f\n"
        "print(ftprep.__file__)\n"
        "c = f.get_checker('chat')\n"
        "print([p.code for p in c.check({'messages': [{'role': 'user', 'content': 'q'}]})])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    without = run()
    assert without.returncode != 0  # no schemas anywhere: the copy really is cut off
    shutil.copytree(REPO / "schemas", site / "ftprep" / "_schemas")
    with_schemas = run()
    assert with_schemas.returncode == 0, with_schemas.stderr
    first, second = with_schemas.stdout.splitlines()
    assert first.startswith(str(site))
    assert second == "['FT301']"


def test_unknown_schema_name_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(SchemaError, match="auto, chat, pretrain, classifier"):
        get_checker("chta")
    with pytest.raises(UsageError):
        get_checker("auto")


# --------------------------------------------------------------------- user schemas


def test_user_schema_draft7_is_applied_by_its_own_rules(tmp_path: Path) -> None:
    schema = write_schema(
        tmp_path,
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"n": {"exclusiveMaximum": 5}},
            "dependencies": {"a": ["b"]},
        },
    )
    assert codes(schema, {"n": 4, "a": 1, "b": 2}) == []
    assert codes(schema, {"n": 5}) == ["FT207"]
    assert codes(schema, {"a": 1}) == ["FT202"]


def test_user_schema_without_schema_key_is_2020_12(tmp_path: Path) -> None:
    schema = write_schema(
        tmp_path, {"prefixItems": [{"type": "string"}], "items": False, "type": "array"}
    )
    assert codes(schema, ["a"]) == []  # type: ignore[arg-type]
    assert codes(schema, ["a", 1]) == ["FT203"]  # type: ignore[arg-type]


def test_user_schema_checker_is_named_after_its_path_and_has_no_fast_path(tmp_path: Path) -> None:
    schema = write_schema(tmp_path, {"type": "object"})
    checker = get_checker(schema)
    assert checker.name == schema
    assert checker.quick_ok(b"{}") is False
    assert checker.check({}) == []


def test_user_schema_is_loaded_once_and_again_when_the_file_changes(tmp_path: Path) -> None:
    schema = write_schema(tmp_path, {"required": ["a"]})
    first = get_checker(schema)
    assert get_checker(schema) is first
    write_schema(tmp_path, {"required": ["a", "bb"]})
    assert get_checker(schema) is not first
    assert codes(schema, {"a": 1}) == ["FT202"]


def test_user_schema_may_build_on_the_builtin_chat_schema(tmp_path: Path) -> None:
    schema = write_schema(
        tmp_path, {"allOf": [{"$ref": "urn:ftprep:schema:chat"}], "required": ["source"]}
    )
    assert codes(schema, {**OK_CHAT, "source": "shop"}) == []
    assert codes(schema, {"messages": [{"role": "bot", "content": "x"}], "source": "s"}) == [
        "FT204"
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "strin"}, "not a valid Draft 2020-12 schema at /type"),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "minLength": -1},
            "not a valid Draft 7 schema at /minLength",
        ),
        ({"$schema": "https://example.com/my-draft"}, "unknown $schema"),
        ([1, 2], "must be an object"),
        ({"$ref": "#/$defs/missing"}, "points to nothing"),
        ({"properties": {"a": {"pattern": "(unclosed"}}}, "is not a valid regex"),
        ({"properties": {"a": {"pattern": "^(a+)+$"}}}, "exponential time"),
        ({"patternProperties": {"^(\\w+\\s?)*$": {}}}, "exponential time"),
    ],
)
def test_invalid_user_schema_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, schema: object, message: str
) -> None:
    path = write_schema(tmp_path, schema, "bad.schema.json")
    with pytest.raises(SchemaError) as info:
        get_checker(path)
    assert str(info.value).startswith(path + ":")
    assert message in str(info.value)


def test_fixed_width_repeats_inside_a_repeat_are_fine(tmp_path: Path) -> None:
    path = write_schema(tmp_path, {"properties": {"a": {"pattern": "^(\\d{3}-)*\\d+$"}}})
    assert codes(path, {"a": "123-456-7"}) == []
    assert codes(path, {"a": "12-3"}) == ["FT206"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "type": "object",\n}', "not valid JSON at line 2"),
        ("", "not valid JSON"),
    ],
)
def test_user_schema_that_is_not_json_is_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SchemaError, match=message):
        get_checker(str(path))


def test_missing_or_unreadable_user_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not found"):
        get_checker(str(tmp_path / "nope.json"))
    with pytest.raises(SchemaError, match="not a regular file"):
        get_checker(str(tmp_path) + "/")


def test_huge_user_schema_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b'{"description": "' + b"x" * 5_000_001 + b'"}')
    with pytest.raises(SchemaError, match="over 5 MB"):
        get_checker(str(path))


# ---------------------------------------------------------------- remote references


def test_remote_ref_is_refused_without_a_single_request(tmp_path: Path, schema_server: Any) -> None:
    # Control: the loopback server does count requests, so zero below means zero.
    urllib.request.urlopen(f"{schema_server.url}/control.json", timeout=5).read()
    assert schema_server.hits == ["/control.json"]
    schema_server.hits.clear()

    for i, schema in enumerate(
        [
            {"$ref": f"{schema_server.url}/direct.json"},
            {"properties": {"a": {"$ref": f"{schema_server.url}/nested.json#/x"}}},
            {"$id": f"{schema_server.url}/root.json", "items": {"$ref": "relative.json"}},
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "definitions": {"d": {"$ref": f"{schema_server.url}/draft7.json"}},
            },
        ]
    ):
        path = write_schema(tmp_path, schema, f"remote-{i}.json")
        with pytest.raises(SchemaError, match="remote references are disabled"):
            get_checker(path)
    assert schema_server.hits == []


def test_jsonschema_alone_would_have_fetched_the_remote_ref(schema_server: Any) -> None:
    # Why the registry matters: the library default opens the URL.
    validator = Draft202012Validator({"$ref": f"{schema_server.url}/s.json"})
    with pytest.warns(DeprecationWarning):
        list(validator.iter_errors("x"))
    assert schema_server.hits == ["/s.json"]


def test_file_ref_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "other.json"
    secret.write_text('{"type": "string"}', encoding="utf-8")
    path = write_schema(tmp_path, {"properties": {"a": {"$ref": secret.as_uri()}}})
    with pytest.raises(SchemaError, match="remote references are disabled"):
        get_checker(path)


def test_ref_shaped_data_inside_const_is_not_a_reference(tmp_path: Path) -> None:
    path = write_schema(tmp_path, {"properties": {"a": {"const": {"$ref": "http://x.invalid/"}}}})
    assert codes(path, {"a": {"$ref": "http://x.invalid/"}}) == []
    assert codes(path, {"a": 1}) == ["FT204"]


def test_local_refs_and_embedded_ids_resolve(tmp_path: Path) -> None:
    path = write_schema(
        tmp_path,
        {
            "$id": "https://example.com/root.json",
            "$defs": {
                "name": {"type": "string", "minLength": 1},
                "sku": {"$id": "sku.json", "pattern": "^[A-Z]+$"},
            },
            "properties": {"n": {"$ref": "#/$defs/name"}, "s": {"$ref": "sku.json"}},
        },
    )
    assert codes(path, {"n": "a", "s": "AB"}) == []
    assert sorted(codes(path, {"n": "", "s": "ab"})) == ["FT205", "FT206"]


# ---------------------------------------------------------------- bounded messages


def test_ten_megabyte_string_failing_max_length_gives_a_short_message(tmp_path: Path) -> None:
    path = write_schema(tmp_path, {"properties": {"prompt": {"maxLength": 100}}})
    (problem,) = get_checker(path).check({"prompt": "x" * 10_000_000})
    assert problem.code == "FT205"
    assert len(problem.message.encode()) < 1024
    assert "10000000 characters" in problem.message


def test_record_nested_past_the_interpreter_limit_is_a_problem_not_a_crash(
    tmp_path: Path,
) -> None:
    path = write_schema(tmp_path, {"items": {"$ref": "#"}})
    value: list[Any] = []
    for _ in range(5000):
        value = [value]
    (problem,) = get_checker(path).check(value)  # type: ignore[arg-type]
    assert problem.code == "FT210"
