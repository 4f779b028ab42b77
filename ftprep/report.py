"""Rendering a validation :class:`~ftprep.problems.Report` as text, JSON or GitHub annotations.

The renderers write to a stream they are given; they never choose where output goes.

>>> import io
>>> from ftprep.problems import FileReport, Problem, Report
>>> bad = Problem(severity="error", code="FT101", message="invalid JSON", line=3, column=7)
>>> report = Report([FileReport("a.jsonl", lines=4, records=3, problems=[bad])])
>>> out = io.StringIO()
>>> _ = render(report, out, "text")
>>> print(out.getvalue(), end="")
a.jsonl:3:7: FT101 invalid JSON
a.jsonl: 1 error, 3 records
"""

from __future__ import annotations

import json
import re
from typing import Literal, TextIO

from .problems import FileReport, Problem, Report

__all__ = ["FORMATS", "display_path", "render", "render_github", "render_json", "render_text"]

Format = Literal["text", "json", "github"]
FORMATS: tuple[Format, ...] = ("text", "json", "github")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_path(path: str) -> str:
    """A path safe to print on one line: undecodable bytes and control characters escaped.

    >>> display_path("a\\nb.jsonl")
    'a\\\\nb.jsonl'
    """
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _summary(f: FileReport) -> str:
    parts = [] if f.error_count else ["ok"]
    if f.error_count:
        parts.append(_plural(f.error_count, "error"))
    if f.warning_count:
        parts.append(_plural(f.warning_count, "warning"))
    parts.append(_plural(f.records, "record"))
    text = ", ".join(parts)
    if f.problems_omitted:
        text += f" ({f.problems_omitted} more not shown)"
    return f"{display_path(f.path)}: {text}"


def _location(path: str, p: Problem) -> str:
    loc = display_path(path)
    if p.line is not None:
        loc += f":{p.line}"
        if p.column is not None:
            loc += f":{p.column}"
    return loc


def _one_line(text: str) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _emit(lines: list[str], stream: TextIO | None) -> str:
    text = "".join(lines)
    if stream is not None:
        stream.write(text)
    return text


def render_text(report: Report, stream: TextIO | None = None, *, quiet: bool = False) -> str:
    """``path:line:col: CODE message`` per problem, then one summary line per file.

    Every renderer writes to ``stream`` when one is given and returns the text.
    """
    lines: list[str] = []
    for f in report.files:
        for p in f.problems:
            lines.append(f"{_location(f.path, p)}: {p.code} {_one_line(p.message)}\n")
        if not quiet:
            lines.append(_summary(f) + "\n")
    return _emit(lines, stream)


def render_json(report: Report, stream: TextIO | None = None) -> str:
    """The stable JSON shape of PRODUCT.md (one document, then a newline)."""
    data = report.to_dict()
    for f in data["files"]:
        f["path"] = display_path(f["path"])
    return _emit([json.dumps(data, ensure_ascii=False, indent=2) + "\n"], stream)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report, stream: TextIO | None = None, *, quiet: bool = False) -> str:
    """GitHub Actions workflow commands: ``::error file=...,line=...,col=...::CODE message``."""
    lines: list[str] = []
    for f in report.files:
        path = _escape_property(display_path(f.path))
        for p in f.problems:
            props = f"file={path}"
            if p.line is not None:
                props += f",line={p.line}"
                if p.column is not None:
                    props += f",col={p.column}"
            kind = "error" if p.is_error else "warning"
            lines.append(f"::{kind} {props}::{_escape_data(f'{p.code} {p.message}')}\n")
        if not quiet:
            lines.append(_summary(f) + "\n")
    return _emit(lines, stream)


def render(
    report: Report, stream: TextIO | None = None, format: str = "text", *, quiet: bool = False
) -> str:
    """Write ``report`` to ``stream`` in ``format`` (``text``, ``json`` or ``github``)."""
    if format == "json":
        return render_json(report, stream)
    if format == "github":
        return render_github(report, stream, quiet=quiet)
    return render_text(report, stream, quiet=quiet)
