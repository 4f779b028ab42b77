"""Problems in data are values: what the validator finds, and the reports that hold them.

A :class:`Problem` is one finding on one line (or on the whole file, ``line=None``).
A :class:`FileReport` collects the problems of one file; a :class:`Report` those of
one run. Nothing here raises for bad data.

>>> p = Problem(severity="error", code="FT101", line=3, column=17,
...             json_path="$.messages[2].role", message="unknown role 'bot'")
>>> p.is_error
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

#: Longest message kept on a problem; inputs are never echoed back in full.
MAX_MESSAGE_CHARS = 900


def clip(text: str, limit: int = 80) -> str:
    """Shorten ``text`` for quoting inside a message (a 10 MB string is never echoed).

    >>> clip("x" * 100, 10)
    'xxxxxxxxxx…(+90 chars)'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, which rule, how bad, and what to do."""

    severity: Severity
    code: str
    message: str
    line: int | None = None
    column: int | None = None
    json_path: str | None = None

    def __post_init__(self) -> None:
        if len(self.message) > MAX_MESSAGE_CHARS:
            # Leave room for clip's "…(+N chars)" so the result stays within the limit.
            object.__setattr__(self, "message", clip(self.message, MAX_MESSAGE_CHARS - 30))

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "line": self.line,
            "column": self.column,
            "json_path": self.json_path,
            "message": self.message,
        }


@dataclass
class FileReport:
    """The verdict on one file.

    ``problems`` holds at most ``max_errors`` entries; ``problems_omitted`` counts
    the rest. ``schema`` is the format the file was checked against (``chat``,
    ``pretrain``, ``classifier``, a user schema's path, or ``None`` if it could not
    be told).
    """

    path: str
    schema: str | None = None
    bytes: int = 0
    lines: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_omitted: int = 0
    errors_omitted: int = 0

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return self.errors_omitted == 0 and not any(p.is_error for p in self.problems)

    @property
    def error_count(self) -> int:
        return sum(1 for p in self.problems if p.is_error) + self.errors_omitted

    @property
    def warning_count(self) -> int:
        omitted_warnings = self.problems_omitted - self.errors_omitted
        return sum(1 for p in self.problems if not p.is_error) + omitted_warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "schema": self.schema,
            "bytes": self.bytes,
            "lines": self.lines,
            "records": self.records,
            "problems": [p.to_dict() for p in self.problems],
            "problems_omitted": self.problems_omitted,
        }


@dataclass
class Report:
    """The verdict on a run: one :class:`FileReport` per path, in the order given."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": [f.to_dict() for f in self.files]}
