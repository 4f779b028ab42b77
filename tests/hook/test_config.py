"""[tool.ftprep] in pyproject.toml: defaults, per-path overrides, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftprep import config
from ftprep.errors import ConfigError


def write_pyproject(directory: Path, body: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_no_table_gives_builtin_defaults(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[project]\nname = 'x'\n")
    cfg = config.load(tmp_path)
    assert cfg.source is None
    assert (cfg.schema, cfg.max_size, cfg.ignore) == (None, None, ())


def test_nearest_pyproject_with_the_table_wins_over_one_without(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ftprep]\nschema = "pretrain"\n')
    sub = tmp_path / "pkg"
    sub.mkdir()
    write_pyproject(sub, "[project]\nname = 'inner'\n")
    cfg = config.load(sub)
    assert cfg.source == tmp_path / "pyproject.toml"
    assert cfg.schema == "pretrain"


def test_sizes_codes_and_counts_are_parsed(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        '[tool.ftprep]\nmax-size = "1MiB"\nmax-errors = 7\nignore = ["FT120", "FT4"]\n'
        'select = ["FT1"]\n',
    )
    cfg = config.load(tmp_path)
    assert cfg.max_size == 1024 * 1024
    assert cfg.max_errors == 7
    assert cfg.ignore == ("FT120", "FT4")
    assert cfg.select == ("FT1",)


def test_per_path_schema_globs_pick_the_first_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(
        tmp_path,
        "[tool.ftprep.per-path-schema]\n"
        '"data/pretrain/*.jsonl" = "pretrain"\n'
        '"data/**/custom-*.jsonl" = "schemas/custom.json"\n'
        '"*.cls.jsonl" = "classifier"\n',
    )
    monkeypatch.chdir(tmp_path)
    cfg = config.load(tmp_path)
    assert cfg.schema_for("data/pretrain/a.jsonl", "auto") == "pretrain"
    assert cfg.schema_for("data/pretrain/deeper/a.jsonl", "auto") == "auto"
    assert cfg.schema_for("data/x/y/custom-1.jsonl", "auto") == "schemas/custom.json"
    assert cfg.schema_for("data/custom-1.jsonl", "auto") == "schemas/custom.json"
    assert cfg.schema_for("any/where/t.cls.jsonl", "chat") == "classifier"
    assert cfg.schema_for("train.jsonl", "chat") == "chat"


def test_schema_paths_are_relative_to_the_pyproject_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(tmp_path, '[tool.ftprep]\nschema = "schemas/mine.json"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    cfg = config.load(sub)
    assert cfg.schema is not None
    assert Path(cfg.schema).resolve() == (tmp_path / "schemas" / "mine.json").resolve()


def test_per_path_ignore_adds_to_the_global_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(
        tmp_path,
        '[tool.ftprep]\nignore = ["FT401"]\n'
        '[tool.ftprep.per-path-ignore]\n"legacy/*.jsonl" = ["FT120"]\n',
    )
    monkeypatch.chdir(tmp_path)
    cfg = config.load(tmp_path)
    assert cfg.ignore_for("legacy/old.jsonl") == ("FT401", "FT120")
    assert cfg.ignore_for("new.jsonl") == ("FT401",)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('schemas = "chat"', "schemas"),
        ("max_size = 10", "max_size"),
        ('max-size = "ten"', "max-size"),
        ("max-size = true", "max-size"),
        ("max-errors = 0", "max-errors"),
        ('ignore = "FT120"', "ignore"),
        ('ignore = ["E501"]', "ignore"),
        ("schema = 3", "schema"),
        ('per-path-schema = "x"', "per-path-schema"),
    ],
)
def test_a_bad_table_raises_config_error_naming_the_key(
    tmp_path: Path, body: str, key: str
) -> None:
    write_pyproject(tmp_path, f"[tool.ftprep]\n{body}\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    assert info.value.key == key
    assert key in str(info.value)


def test_unknown_key_with_underscore_suggests_the_dashed_spelling(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.ftprep]\nmax_errors = 3\n")
    with pytest.raises(ConfigError, match="did you mean 'max-errors'"):
        config.load(tmp_path)


def test_unparseable_toml_is_a_config_error(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.ftprep\nschema=")
    with pytest.raises(ConfigError, match="cannot read TOML"):
        config.load(tmp_path)
