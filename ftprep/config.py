"""Project-wide defaults from ``[tool.ftprep]`` in ``pyproject.toml``.

The nearest ``pyproject.toml`` that has a ``[tool.ftprep]`` table, searching from the
working directory upwards, supplies defaults; options given on the command line win.

.. code-block:: toml

    [tool.ftprep]
    schema = "auto"            # auto | chat | pretrain | classifier | path to a JSON Schema
    max-size = "500MB"
    max-errors = 50
    ignore = ["FT401"]         # codes or code prefixes never reported
    select = []                # if set, only these codes or prefixes are reported

    [tool.ftprep.per-path-schema]   # glob (relative to pyproject.toml) -> schema
    "data/pretrain/*.jsonl" = "pretrain"
    "data/custom/**/*.jsonl" = "schemas/custom.json"

    [tool.ftprep.per-path-ignore]   # glob -> codes ignored in those files only
    "data/legacy/*.jsonl" = ["FT120"]

>>> cfg = parse_table({"schema": "chat", "ignore": ["FT4"]}, base_dir=Path("."))
>>> cfg.schema, cfg.ignore
('chat', ('FT4',))
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .sizes import parse_size

BUILTIN_SCHEMAS = ("auto", "chat", "pretrain", "classifier")
_CODE_RE = re.compile(r"^FT\d{0,3}$")


@dataclass(frozen=True)
class Config:
    """Defaults for validation, as read from ``[tool.ftprep]`` (or the built-in ones)."""

    source: Path | None = None
    schema: str | None = None
    max_size: int | None = None
    max_errors: int | None = None
    ignore: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    per_path_schema: tuple[tuple[str, str], ...] = ()
    per_path_ignore: tuple[tuple[str, tuple[str, ...]], ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)

    def schema_for(self, path: str, default: str) -> str:
        """The schema for ``path``: the first matching per-path glob, else ``default``."""
        rel = self._relative(path)
        for pattern, schema in self.per_path_schema:
            if _glob_match(rel, pattern):
                return schema
        return default

    def ignore_for(self, path: str) -> tuple[str, ...]:
        """Codes ignored in ``path``: the global list plus every matching per-path list."""
        rel = self._relative(path)
        extra = [
            c for pattern, codes in self.per_path_ignore if _glob_match(rel, pattern) for c in codes
        ]
        return (*self.ignore, *extra)

    def _relative(self, path: str) -> str:
        p = Path(path)
        try:
            return p.resolve().relative_to(self.base_dir.resolve()).as_posix()
        except ValueError:
            return p.as_posix()


def _glob_regex(pattern: str) -> re.Pattern[str]:
    # `**/` spans any number of directories, `*` and `?` stay within one segment.
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _glob_match(rel: str, pattern: str) -> bool:
    regex = _glob_regex(pattern)
    # A pattern without a slash matches a file name in any directory, as in .gitignore.
    target = rel if "/" in pattern else rel.rsplit("/", 1)[-1]
    return regex.match(target) is not None


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.ftprep]`` table, from ``start`` upwards."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"{candidate}: cannot read TOML: {e}") from e
            if isinstance(data.get("tool"), dict) and "ftprep" in data["tool"]:
                return candidate
    return None


def load(start: Path | None = None) -> Config:
    """Read the configuration that applies from ``start`` (default: the working directory).

    Returns the built-in defaults when no ``[tool.ftprep]`` table is found; raises
    :class:`~ftprep.errors.ConfigError` naming the key when the table is invalid.
    """
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config(base_dir=(start or Path.cwd()))
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    table = data["tool"]["ftprep"]
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.ftprep] must be a table", key="tool.ftprep")
    return parse_table(table, base_dir=pyproject.parent, source=pyproject)


def _err(source: Path | None, key: str, message: str) -> ConfigError:
    where = f"{source}: " if source else ""
    return ConfigError(f"{where}[tool.ftprep] {key}: {message}", key=key)


def _codes(value: Any, key: str, source: Path | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _err(source, key, 'must be a list of rule codes, e.g. ["FT120", "FT4"]')
    for code in value:
        if not _CODE_RE.match(code):
            raise _err(source, key, f"{code!r} is not a rule code (FT followed by up to 3 digits)")
    return tuple(value)


def _schema(value: Any, key: str, source: Path | None, base_dir: Path) -> str:
    if not isinstance(value, str) or not value:
        raise _err(
            source, key, "must be auto, chat, pretrain, classifier or a path to a .json schema"
        )
    if value in BUILTIN_SCHEMAS:
        return value
    # A schema path is relative to the pyproject.toml that names it, not to the cwd.
    return value if Path(value).is_absolute() else os.path.relpath(base_dir / value)


def parse_table(table: dict[str, Any], *, base_dir: Path, source: Path | None = None) -> Config:
    """Check a ``[tool.ftprep]`` table and turn it into a :class:`Config`."""
    known = {
        "schema",
        "max-size",
        "max-errors",
        "ignore",
        "select",
        "per-path-schema",
        "per-path-ignore",
    }
    for key in table:
        if key not in known:
            hint = (
                f" (did you mean {key.replace('_', '-')!r}?)"
                if key.replace("_", "-") in known
                else ""
            )
            raise _err(source, key, f"unknown key{hint}; known keys: {', '.join(sorted(known))}")

    schema = _schema(table["schema"], "schema", source, base_dir) if "schema" in table else None

    max_size = None
    if "max-size" in table:
        raw = table["max-size"]
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise _err(source, "max-size", 'must be a size such as "500MB" or a number of bytes')
        try:
            max_size = parse_size(raw)
        except UsageError as e:
            raise _err(source, "max-size", str(e)) from e

    max_errors = None
    if "max-errors" in table:
        raw = table["max-errors"]
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise _err(source, "max-errors", "must be a whole number of at least 1")
        max_errors = raw

    ignore = _codes(table["ignore"], "ignore", source) if "ignore" in table else ()
    select = _codes(table["select"], "select", source) if "select" in table else ()

    per_schema: list[tuple[str, str]] = []
    raw_ps = table.get("per-path-schema", {})
    if not isinstance(raw_ps, dict):
        raise _err(source, "per-path-schema", "must be a table of glob = schema")
    for pattern, value in raw_ps.items():
        per_schema.append(
            (pattern, _schema(value, f"per-path-schema.{pattern!r}", source, base_dir))
        )

    per_ignore: list[tuple[str, tuple[str, ...]]] = []
    raw_pi = table.get("per-path-ignore", {})
    if not isinstance(raw_pi, dict):
        raise _err(source, "per-path-ignore", "must be a table of glob = [codes]")
    for pattern, value in raw_pi.items():
        per_ignore.append((pattern, _codes(value, f"per-path-ignore.{pattern!r}", source)))

    return Config(
        source=source,
        schema=schema,
        max_size=max_size,
        max_errors=max_errors,
        ignore=ignore,
        select=select,
        per_path_schema=tuple(per_schema),
        per_path_ignore=tuple(per_ignore),
        base_dir=base_dir,
    )
