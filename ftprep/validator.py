"""Checking files: whole-file sniffing, every line, every record, in parallel when big.

:func:`validate` is the library's entry point; :func:`validate_bytes` checks data
already in memory (the Files API emulator checks uploads with it). Problems in the
data are values in the returned report; only a bad option or an unusable schema
raises.

Each line takes the fast path first: the format's ``quick_ok`` on the raw bytes,
which also proves the line has no duplicate key and is shallow, so a line it
accepts is done. A line that is not plainly clean takes the slow path: ``orjson``
parses it, its error message is turned into a precise problem with a hint, jiter
looks for duplicate keys (which every fast parser hides), the nesting depth is
measured, and the format's full ``check`` judges the record.

A file larger than ``parallel_threshold`` is cut into byte ranges that end on
``\\n`` and checked by worker processes; each returns its problems with line
numbers counted from the start of its range, and the parent renumbers them.

>>> report = validate_bytes(b'{"text": "A chain wears out."}\\n{"text": "x",}\\n')
>>> [(p.line, p.code) for p in report.problems]
[(2, 'FT101')]
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import io
import itertools
import multiprocessing
import os
import re
import signal
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import jiter
import orjson

from . import _native, formats, reader
from .errors import InputError, UsageError
from .problems import FileReport, Problem, Report, clip
from .progress import ProgressCallback
from .sizes import DEFAULT_MAX_SIZE, parse_size

__all__ = [
    "DEFAULT_PARALLEL_THRESHOLD",
    "MAX_DEPTH",
    "MAX_PROBLEMS_KEPT",
    "validate",
    "validate_bytes",
]

#: Deepest nesting of objects and arrays accepted in a record (FT107). Real records
#: stay under 20; the limit keeps every later step (schemas, rules) far from
#: Python's recursion limit, and parsers that disagree about depth out of play.
MAX_DEPTH = 64
#: Files at least this large are checked by worker processes. Starting them costs about
#: 0.3 s (measured on 2 cores: 32 MB of chat took 0.45 s in one process, 0.52 s in two).
DEFAULT_PARALLEL_THRESHOLD = 64 * 10**6
#: Problems kept per file when ``max_errors`` is None; the rest are counted.
MAX_PROBLEMS_KEPT = 100_000
#: How many parseable records ``schema="auto"`` looks at, and how far into the file.
_DETECT_RECORDS = 64
_DETECT_BYTES = 4 * 2**20
_RECORD_CODES = ("FT2", "FT3", "FT4")

_DUP_RE = re.compile(r'^Detected duplicate key "(.*)" at line \d+ column (\d+)$', re.S)
_WS = b" \t\r"


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    """Everything a worker needs to check a byte range; sent to worker processes."""

    schema: str | None  # a checker name for get_checker, or None (FT010: no record checks)
    max_line_bytes: int
    keep: int  # problems kept per range (and per file)
    ignore: tuple[str, ...]
    select: tuple[str, ...]

    def wanted(self, code: str) -> bool:
        if self.select and not code.startswith(self.select):
            return False
        return not (self.ignore and code.startswith(self.ignore))

    def any_wanted(self, prefixes: Sequence[str]) -> bool:
        # Could some code starting with one of these prefixes pass the filter?
        for prefix in prefixes:
            ignored = any(prefix.startswith(i) for i in self.ignore)
            if ignored:
                continue
            if not self.select or any(
                s.startswith(prefix) or prefix.startswith(s) for s in self.select
            ):
                return True
        return False


def _codes(values: Iterable[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        code = v.strip().upper()
        if not re.fullmatch(r"FT\d{0,3}", code):
            raise UsageError(
                f"invalid {what} code {v!r}: use a rule code or prefix like FT112 or FT4"
            )
        out.append(code)
    return tuple(out)


# --------------------------------------------------------------------- range results


@dataclass
class _Result:
    """What checking one byte range found; line numbers count from the range start."""

    lines: int = 0
    records: int = 0
    nonblank: int = 0
    problems: list[Problem] = field(default_factory=list)
    omitted: int = 0
    errors_omitted: int = 0
    bytes_read: int = 0
    # Per record kept for FT120: a 64-bit fingerprint, the line, the offset in the file.
    fingerprints: array[int] = field(default_factory=lambda: array("Q"))
    record_lines: array[int] = field(default_factory=lambda: array("Q"))
    record_offsets: array[int] = field(default_factory=lambda: array("Q"))


class _Collector:
    """Keeps the first ``keep`` wanted problems and counts the rest."""

    def __init__(self, opts: _Options, result: _Result) -> None:
        self._opts = opts
        self._result = result
        self._keep = opts.keep
        self.nul_reported = False
        self.wants_dup_keys = opts.wanted("FT112")

    def add(self, p: Problem) -> None:
        if not self._opts.wanted(p.code):
            return
        r = self._result
        if len(r.problems) < self._keep:
            r.problems.append(p)
        else:
            r.omitted += 1
            if p.is_error:
                r.errors_omitted += 1


def _err(code: str, message: str, line: int | None, column: int | None = None) -> Problem:
    return Problem(severity="error", code=code, message=message, line=line, column=column)


# ------------------------------------------------------------------------ line checks


def _check_range(
    fh: BinaryIO,
    start: int,
    end: int | None,
    opts: _Options,
    *,
    skip: int = 0,
    progress: ProgressCallback | None = None,
) -> _Result:
    """Check the lines of ``fh[start:end]``; ``skip`` bytes at ``start`` were reported (a BOM)."""
    result = _Result()
    out = _Collector(opts, result)
    checker = formats.get_checker(opts.schema) if opts.schema is not None else None
    check_records = checker is not None and opts.any_wanted(_RECORD_CODES)
    quick_ok = checker.quick_ok if checker is not None else _never
    want_dups = opts.wanted("FT120")
    fps, rec_lines, rec_offsets = (
        result.fingerprints,
        result.record_lines,
        result.record_offsets,
    )
    fps_append, lines_append, offsets_append = fps.append, rec_lines.append, rec_offsets.append
    scan, fingerprint = _native.scan, _native.fingerprint
    lineno = 0
    records = 0
    fast = 0
    # Written for speed: every line of a file goes through this loop.
    for lineno, (offset, raw, terminated) in enumerate(
        reader.iter_lines(
            fh, start + skip, end, max_line_bytes=opts.max_line_bytes, progress=progress
        ),
        1,
    ):
        if isinstance(raw, int):
            out.add(
                _err(
                    "FT110",
                    f"line is {raw} bytes long, over the maximum of {opts.max_line_bytes} "
                    "(a file that is not JSON Lines, or records joined without line ends?); "
                    "raise --max-line-bytes if the record is real",
                    lineno,
                )
            )
            result.nonblank += 1
            continue
        # One pass over the bytes: UTF-8 validity, the colon count the fast path's
        # duplicate-key proof needs, the fingerprint of the line without its "\r".
        scanned = scan(raw)
        if scanned is not None and quick_ok(raw, scanned[0]):
            # The fast path: a clean record for the format, with no duplicate key
            # (quick_ok proves that too) and shallow by construction (FT107).
            fast += 1
            if want_dups:
                fps_append(scanned[1])
                lines_append(lineno)
                offsets_append(offset)
            continue
        record = _slow_line(raw, offset, lineno, terminated, out, result)
        if record is None:
            continue
        records += 1
        if want_dups:
            key = raw[:-1] if raw.endswith(b"\r") else raw
            if key.startswith(b"\xef\xbb\xbf"):
                key = key[3:]
                offset += 3
            fps.append(fingerprint(key))
            rec_lines.append(lineno)
            rec_offsets.append(offset)
        if check_records and checker is not None and record is not _TOO_DEEP:
            for p in checker.check(record):
                out.add(dataclasses.replace(p, line=lineno))
    result.lines = lineno
    result.records = records + fast
    result.nonblank += fast
    result.bytes_read = fh.tell() - (start + skip)
    return result


def _never(raw: bytes, colons: int | None = None, /) -> bool:
    # quick_ok when there is no record checker (FT010): every line takes the slow path.
    return False


_TOO_DEEP: dict[str, Any] = {}


def _slow_line(
    raw: bytes,
    offset: int,
    lineno: int,
    terminated: bool,
    out: _Collector,
    result: _Result,
) -> dict[str, Any] | None:
    """Find every line-level problem of one line; return its record when it has one."""
    stripped = raw.strip(_WS)
    if not stripped:
        out.add(
            _err(
                "FT109",
                "blank line: JSON Lines has one record per line and no empty lines; delete it",
                lineno,
            )
        )
        return None
    result.nonblank += 1
    shift = 0
    if raw.startswith(b"\xef\xbb\xbf"):
        out.add(
            _err(
                "FT111",
                "byte order mark (BOM) at the start of the line (files joined with cat?): "
                "delete the 3 bytes EF BB BF",
                lineno,
                1,
            )
        )
        raw = raw[3:]
        shift = 3
        if not raw.strip(_WS):
            return None
    nul = raw.find(reader.NUL_RUN)
    if nul >= 0:
        if not out.nul_reported:
            out.nul_reported = True
            out.add(
                Problem(
                    severity="error",
                    code="FT005",
                    message=f"NUL padding from byte offset {offset + shift + nul} of the file "
                    "(a preallocated or crash-damaged file): restore it from a good copy, or cut "
                    "the NUL bytes",
                    line=lineno,
                    column=shift + nul + 1,
                )
            )
        return None
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        out.add(_classify(raw, e, offset, shift, lineno, terminated))
        return None
    if not isinstance(record, dict):
        out.add(_err("FT108", _not_object(record), lineno, shift + 1))
        return None
    dup = _duplicate_key(raw) if out.wants_dup_keys else None
    if dup is not None and dup is not _DEEP:
        out.add(_dup_problem(raw, dup, lineno, shift))
    if _depth(record) > MAX_DEPTH:
        out.add(_deep_problem(lineno))
        return _TOO_DEEP
    return record


def _not_object(value: object) -> str:
    kind = {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "not an object")
    hint = 'each line must be one JSON object, like {"messages": [...]}'
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        hint = "a JSON array of records: write each object on its own line"
    return f"record is {kind}, not a JSON object: {hint}"


#: jiter's own nesting limit: it stops there (and then cannot look for duplicates).
_JITER_DEPTH = 200
_DEEP = ("", 0)


def _duplicate_key(raw: bytes) -> tuple[str, int] | None:
    """The first duplicate key and jiter's column for it; ``_DEEP`` past jiter's depth."""
    try:
        jiter.from_json(raw, catch_duplicate_keys=True, cache_mode=False)
    except ValueError as e:
        text = str(e)
        m = _DUP_RE.match(text)
        if m is not None:
            return m.group(1), int(m.group(2))
        if text.startswith("recursion limit"):
            return _DEEP
    return None


def _dup_problem(raw: bytes, dup: tuple[str, int], lineno: int, shift: int = 0) -> Problem:
    key, col = dup
    # jiter points after the duplicate's colon; walk back to its opening quote.
    colon = raw.rfind(b":", 0, col)
    close = raw.rfind(b'"', 0, colon)
    opening = raw.rfind(b'"', 0, close)
    column = opening + 1 if 0 <= opening < close else col
    return _err(
        "FT112",
        f"duplicate key {clip(repr(key), 60)} in one object: parsers disagree on which value "
        "wins; keep one",
        lineno,
        shift + column,
    )


def _depth(value: object) -> int:
    # Iterative on purpose: a recursive walk is what FT107 protects against.
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if d > deepest:
            deepest = d
            if d > MAX_DEPTH:
                return d
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _deep_problem(lineno: int) -> Problem:
    return _err(
        "FT107",
        f"objects and arrays nested more than {MAX_DEPTH} deep: flatten the record",
        lineno,
    )


# ------------------------------------------------------------------ JSON error hints

_PY = re.compile(rb"(True|False|None)\b")
_NAN = re.compile(rb"-?(NaN|Infinity|inf|nan)\b")


def _classify(
    raw: bytes, e: orjson.JSONDecodeError, offset: int, shift: int, lineno: int, terminated: bool
) -> Problem:
    msg = e.msg
    if "UTF-8" in msg:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as u:
            at = u.start
            bad = raw[at]
            where = offset + shift + at
            if bad == 0xED and at + 1 < len(raw) and 0xA0 <= raw[at + 1] <= 0xBF:
                return _err(
                    "FT105",
                    f"UTF-16 surrogate encoded as UTF-8 bytes (CESU-8) at byte offset {where} "
                    "of the file: re-encode the text as real UTF-8",
                    lineno,
                    shift + at + 1,
                )
            return _err(
                "FT104",
                f"invalid UTF-8 byte 0x{bad:02X} at byte offset {where} of the file "
                "(Latin-1 or Windows-1252 text?): re-encode the file as UTF-8",
                lineno,
                shift + at + 1,
            )
    text = raw.decode("utf-8", "replace")
    col = shift + len(text[: e.pos].encode("utf-8")) + 1
    at_bytes = raw[col - 1 - shift :]

    def invalid(hint: str) -> Problem:
        return _err("FT101", f"invalid JSON: {hint}", lineno, col)

    if "depth limit" in msg:
        return _deep_problem(lineno)
    if "infinity" in msg:
        return _err(
            "FT113",
            "number out of range (too large for a 64-bit float): write it as a string, or "
            "use a smaller number",
            lineno,
            col,
        )
    if "surrogate" in msg:
        return _err(
            "FT105",
            "lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair): the text was cut "
            "inside an emoji or similar; fix or remove the escape",
            lineno,
            col,
        )
    if "control character" in msg:
        ch = at_bytes[:1]
        name = {b"\t": "tab, write \\t", b"\x00": "NUL, write \\u0000"}.get(
            ch, f"write it as \\u{ch[0] if ch else 0:04x}"
        )
        return _err(
            "FT106",
            f"raw control character U+{ch[0] if ch else 0:04X} inside a string: escape it ({name})",
            lineno,
            col,
        )
    if "after document" in msg or "trailing characters" in msg:
        if at_bytes.lstrip(_WS).startswith((b"//", b"/*", b"#")):
            return invalid("JSON has no comments: remove them")
        return _err(
            "FT102",
            "extra data after the JSON value: two records on one line? put each record on a "
            "line of its own",
            lineno,
            col,
        )
    if "end of data" in msg or "empty" in msg:
        if not terminated:
            return _err(
                "FT103",
                "the last line stops in the middle of a record: the file looks truncated; "
                "re-export it or delete the incomplete last line",
                lineno,
                col,
            )
        return invalid(
            "the line ends before the record does (a record split over several lines? "
            "write each record on one line)"
        )
    if "trailing comma" in msg:
        return invalid("trailing comma before } or ]: remove it")
    if "leading zero" in msg:
        return invalid("numbers cannot start with 0 (write 7, not 07)")
    if at_bytes.startswith(b"'") or ("string key" in msg and b"'" in at_bytes[:1]):
        return invalid("strings and keys take double quotes, not single quotes")
    if at_bytes.startswith((b"//", b"/*", b"#")):
        return invalid("JSON has no comments: remove them")
    m = _PY.match(at_bytes)
    if m is not None:
        word = m.group(1).decode()
        js = {"True": "true", "False": "false", "None": "null"}[word]
        return invalid(
            f"{word} is Python, not JSON (use {js}): write records with json.dumps, not str()"
        )
    if _NAN.match(at_bytes) or (
        "no digit after sign" in msg and _NAN.match(raw[col - 2 - shift :])
    ):
        return invalid("NaN and Infinity are not JSON numbers: use null or a finite number")
    if "BOM" in msg:
        return _err("FT111", "byte order mark in the middle of a line: remove it", lineno, col)
    return invalid(clip(msg, 120))


# ----------------------------------------------------------------------- duplicates


#: Fingerprints counted at once when looking for repeats (about 90 bytes each).
_DUP_SLICE = 1_000_000


def _find_duplicates(
    results: Sequence[_Result],
    bases: Sequence[int],
    read_line: Callable[[int, int], bytes],
) -> list[Problem]:
    """FT120: records equal byte for byte to an earlier one, confirmed by reading both."""
    fps: array[int] = array("Q")
    local_lines: array[int] = array("Q")  # line numbers within each range
    offsets: array[int] = array("Q")
    starts: list[int] = []  # where each range's records begin in the arrays
    for r in results:
        starts.append(len(fps))
        fps.extend(r.fingerprints)
        local_lines.extend(r.record_lines)
        offsets.extend(r.record_offsets)

    def line_of(i: int) -> int:
        return local_lines[i] + bases[bisect.bisect_right(starts, i) - 1]

    # This runs in the parent after the workers are done, so it is kept to a few
    # C-level passes: counting fingerprints (a dict of ~90 bytes a record) finds the
    # repeated ones, and only their records are looked at again. Past a million
    # records, one slice of fingerprints is counted per pass to bound the memory.
    total = len(fps)
    passes = max(1, -(-total // _DUP_SLICE))
    found: list[Problem] = []
    for part in range(passes):
        if passes == 1:
            counts = collections.Counter(fps)
        else:
            counts = collections.Counter(fp for fp in fps if fp % passes == part)
        if len(counts) == sum(counts.values()):
            continue  # no fingerprint twice: no duplicate in this slice
        repeated = {fp for fp, n in counts.items() if n > 1}
        del counts
        groups: dict[int, list[int]] = {}
        for i, fp in enumerate(fps):
            if fp in repeated:
                groups.setdefault(fp, []).append(i)
        for fp, indexes in groups.items():
            found.extend(_confirm(indexes, fp & 0xFFFFFFFF, line_of, offsets, read_line))
    return found


def _confirm(
    indexes: list[int],
    length: int,
    line_of: Callable[[int], int],
    offsets: array[int],
    read_line: Callable[[int, int], bytes],
) -> list[Problem]:
    # Records sharing a fingerprint, in file order: equal bytes make a duplicate of the
    # first copy; different bytes (a collision) start a group of their own.
    firsts: list[tuple[bytes, int]] = []
    out: list[Problem] = []
    for i in indexes:
        here = read_line(offsets[i], length)
        match = next((line for data, line in firsts if data == here), None)
        if match is None:
            firsts.append((here, line_of(i)))
            continue
        out.append(
            Problem(
                severity="warning",
                code="FT120",
                message=f"exact duplicate of line {match}: drop one copy unless the "
                "repetition is meant to weigh the example",
                line=line_of(i),
            )
        )
    return out


# ------------------------------------------------------------------- whole files


def _sort_key(p: Problem) -> tuple[int, int, int]:
    return (0 if p.line is None else 1, p.line or 0, p.column or 0)


def _finish(
    rep: FileReport,
    file_problems: list[Problem],
    results: Sequence[_Result],
    bases: Sequence[int],
    dups: list[Problem],
    opts: _Options,
) -> FileReport:
    problems: list[Problem] = []
    omitted = errors_omitted = 0
    nul_seen = False
    for r, base in zip(results, bases, strict=True):
        omitted += r.omitted
        errors_omitted += r.errors_omitted
        for p in r.problems:
            if p.code == "FT005":
                if nul_seen:
                    continue
                nul_seen = True
            problems.append(dataclasses.replace(p, line=p.line + base) if base and p.line else p)
    nonblank = sum(r.nonblank for r in results)
    rep.lines = sum(r.lines for r in results)
    rep.records = sum(r.records for r in results)
    if not nonblank and not any(
        p.code in ("FT003", "FT004", "FT005", "FT006", "FT009") for p in file_problems
    ):
        problems = [p for p in problems if p.code != "FT109"]
        file_problems = [
            *file_problems,
            _err(
                "FT001",
                "the file holds no records (it is empty or only blank lines): "
                "check that the right file was passed",
                None,
            ),
        ]
    for p in file_problems + dups:
        # Without a single record there is nothing to tell the format from: FT010 is noise.
        if opts.wanted(p.code) and not (p.code == "FT010" and not rep.records):
            problems.append(p)
    problems.sort(key=_sort_key)
    keep = opts.keep
    if len(problems) > keep:
        dropped = problems[keep:]
        problems = problems[:keep]
        omitted += len(dropped)
        errors_omitted += sum(1 for p in dropped if p.is_error)
    rep.problems = problems
    rep.problems_omitted = omitted
    rep.errors_omitted = errors_omitted
    return rep


def _detect(fh: BinaryIO, start: int, opts_max_line: int) -> str | None:
    """The format of the first parseable records, for ``schema="auto"``."""
    seen = 0
    for _, raw, _ in reader.iter_lines(fh, start, None, max_line_bytes=opts_max_line):
        if not isinstance(raw, int):
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                record = None
            if record is not None:
                name = formats.detect_format(record)
                if name is not None:
                    return name
                seen += 1
        if seen >= _DETECT_RECORDS or fh.tell() > start + _DETECT_BYTES:
            break
    return None


def _range_bounds(fh: BinaryIO, start: int, size: int, pieces: int) -> list[tuple[int, int]]:
    """Cut ``[start, size)`` into about ``pieces`` ranges, each ending just after a ``\\n``."""
    bounds = [start]
    step = (size - start) / pieces
    for i in range(1, pieces):
        target = max(int(start + i * step), bounds[-1])
        fh.seek(target)
        pos = target
        while True:
            block = fh.read(reader.CHUNK_SIZE)
            if not block:
                pos = size
                break
            nl = block.find(b"\n")
            if nl >= 0:
                pos += nl + 1
                break
            pos += len(block)
        if pos >= size:
            break
        if pos > bounds[-1]:
            bounds.append(pos)
    bounds.append(size)
    return list(itertools.pairwise(bounds))


def _worker_init() -> None:
    # The parent handles Ctrl-C and ends the pool; workers must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker(task: tuple[str, int, int, _Options]) -> _Result:
    path, start, end, opts = task
    with open(path, "rb", buffering=0) as fh:
        return _check_range(fh, start, end, opts)


def _run_workers(
    path: str,
    ranges: list[tuple[int, int]],
    opts: _Options,
    jobs: int,
    progress: ProgressCallback | None,
) -> list[_Result] | None:
    """Check ``ranges`` in worker processes, in order; None if the workers cannot start.

    Workers are spawned, not forked (forking a process that runs threads is unsafe).
    A spawned worker re-imports the parent's main script; when that is impossible
    (``python -`` reading stdin, for one) the pool breaks at once and the caller
    falls back to reading in-process.
    """
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not os.path.exists(main_file):
        return None
    ctx = multiprocessing.get_context("spawn")
    tasks = [(path, s, e, opts) for s, e in ranges]
    pool = ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=ctx, initializer=_worker_init)
    results: list[_Result] = []
    try:
        for (s, e), r in zip(ranges, pool.map(_worker, tasks), strict=True):
            results.append(r)
            if progress is not None:
                progress(e - s)
    except BrokenProcessPool:
        return None
    except BaseException:
        # Ctrl-C or an error: stop the workers now rather than after their ranges.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _check_file(
    path: str,
    *,
    schema: str,
    max_size: int,
    jobs: int,
    opts: _Options,
    progress: ProgressCallback | None,
    parallel_threshold: int,
) -> FileReport:
    rep = FileReport(path=path)
    try:
        fh, before = reader.open_regular(path)
    except InputError as e:
        rep.problems = [_err("FT011", f"cannot read this path: {e}", None)]
        return rep
    with fh:
        size = before.st_size
        rep.bytes = size
        head = os.pread(fh.fileno(), reader.SNIFF_BYTES, 0)
        file_problems, results, bases, dups = _check_open(
            fh,
            path,
            size,
            head,
            schema=schema,
            max_size=max_size,
            jobs=jobs,
            opts=opts,
            progress=progress,
            parallel_threshold=parallel_threshold,
            rep=rep,
        )
        try:
            after = os.stat(path)
            changed = not reader.same_file(before, os.fstat(fh.fileno())) or not reader.same_file(
                before, after
            )
        except OSError:
            changed = True
        if results and sum(r.bytes_read for r in results) != size - _skip(file_problems):
            changed = True  # fewer bytes than stat said: truncated while read
        if changed:
            file_problems.append(
                _err(
                    "FT008",
                    "the file changed while it was being read (written to, replaced or "
                    "truncated): validate it again once nothing writes to it",
                    None,
                )
            )
    return _finish(rep, file_problems, results, bases, dups, opts)


def _skip(file_problems: list[Problem]) -> int:
    return 3 if any(p.code == "FT002" for p in file_problems) else 0


def _check_open(
    fh: BinaryIO,
    path: str | None,
    size: int,
    head: bytes,
    *,
    schema: str,
    max_size: int,
    jobs: int,
    opts: _Options,
    progress: ProgressCallback | None,
    parallel_threshold: int,
    rep: FileReport,
) -> tuple[list[Problem], list[_Result], list[int], list[Problem]]:
    sn = reader.sniff(head, size)
    file_problems = list(sn.problems)
    if size > max_size:
        file_problems.append(
            _err(
                "FT007",
                f"the file is {size} bytes, over the upload limit of {max_size}: shard it with "
                f"`ftprep split PATH --max-size {max_size}`",
                None,
            )
        )
    if sn.stop:
        if progress is not None:
            progress(size)
        return file_problems, [], [], []
    name: str | None = schema
    if schema == "auto":
        name = _detect(fh, sn.skip, opts.max_line_bytes)
        if name is None:
            file_problems.append(
                _err(
                    "FT010",
                    "the format could not be told from the first records (no 'messages' "
                    "or 'text' key): pass --schema chat|pretrain|classifier|PATH.json",
                    None,
                )
            )
    rep.schema = name if name is None else formats.get_checker(name).name
    opts = dataclasses.replace(opts, schema=name)
    if path is not None and jobs > 1 and size >= parallel_threshold:
        pieces = min(jobs * 4, max(2, size // max(1, parallel_threshold // 4)))
        ranges = _range_bounds(fh, sn.skip, size, pieces)
    else:
        ranges = [(sn.skip, size)]
    results: list[_Result] = []
    if len(ranges) == 1:
        results.append(_check_range(fh, 0, size, opts, skip=sn.skip, progress=progress))
    else:
        assert path is not None
        parallel = _run_workers(path, ranges, opts, jobs, progress)
        if parallel is None:
            # Workers could not start (see _run_workers): one process reads it all.
            parallel = [_check_range(fh, 0, size, opts, skip=sn.skip, progress=progress)]
        results.extend(parallel)
    bases: list[int] = []
    n = 0
    for r in results:
        bases.append(n)
        n += r.lines

    def read_line(off: int, length: int) -> bytes:
        fh.seek(off)
        return fh.read(length)

    dups = _find_duplicates(results, bases, read_line) if opts.wanted("FT120") else []
    return file_problems, results, bases, dups


# ---------------------------------------------------------------------- public API


def _options(
    *,
    max_errors: int | None,
    max_line_bytes: int | str,
    ignore: Iterable[str] | str,
    select: Iterable[str] | str,
) -> _Options:
    if max_errors is not None and max_errors < 0:
        raise UsageError(f"max_errors must be 0 or more, got {max_errors}")
    return _Options(
        schema=None,
        max_line_bytes=parse_size(max_line_bytes),
        keep=MAX_PROBLEMS_KEPT if max_errors is None else max_errors,
        ignore=_codes(ignore, "ignore"),
        select=_codes(select, "select"),
    )


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def validate(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    schema: str = "auto",
    max_size: int | str = DEFAULT_MAX_SIZE,
    max_errors: int | None = None,
    jobs: int | None = None,
    max_line_bytes: int | str = reader.DEFAULT_MAX_LINE_BYTES,
    ignore: Iterable[str] | str = (),
    select: Iterable[str] | str = (),
    progress: ProgressCallback | None = None,
    parallel_threshold: int = DEFAULT_PARALLEL_THRESHOLD,
) -> Report:
    """Check JSON Lines files; return one :class:`~ftprep.problems.FileReport` per path.

    ``schema`` is ``"auto"`` (detect each file's format from its first records),
    ``"chat"``, ``"pretrain"``, ``"classifier"`` or the path of a JSON Schema file.
    ``max_errors`` caps the problems kept per file (the rest are counted in
    ``problems_omitted``); ``ignore``/``select`` take rule codes or prefixes
    (``"FT4"``). ``jobs`` worker processes (default: one per CPU) check files of at
    least ``parallel_threshold`` bytes. ``progress`` is called with bytes done.

    Every path is checked, whatever the earlier ones gave; one that cannot be read
    gets FT011. Raises :class:`~ftprep.errors.UsageError` for a bad option and
    :class:`~ftprep.errors.SchemaError` for an unusable schema file.

    >>> import ftprep
    >>> report = ftprep.validate(["train.jsonl"], schema="chat")  # doctest: +SKIP
    >>> report.ok, report.files[0].records                         # doctest: +SKIP
    (True, 1200)
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    limit = parse_size(max_size)
    opts = _options(
        max_errors=max_errors, max_line_bytes=max_line_bytes, ignore=ignore, select=select
    )
    if schema != "auto":
        formats.get_checker(schema)  # a bad schema fails now, before any file is read
    if jobs is not None and jobs < 1:
        raise UsageError(f"jobs must be 1 or more, got {jobs}")
    n_jobs = jobs if jobs is not None else _default_jobs()
    report = Report()
    for p in paths:
        report.files.append(
            _check_file(
                os.fspath(p),
                schema=schema,
                max_size=limit,
                jobs=n_jobs,
                opts=opts,
                progress=progress,
                parallel_threshold=parallel_threshold,
            )
        )
    return report


def validate_bytes(
    data: bytes,
    *,
    schema: str = "auto",
    path: str = "<bytes>",
    max_size: int | str = DEFAULT_MAX_SIZE,
    max_errors: int | None = None,
    max_line_bytes: int | str = reader.DEFAULT_MAX_LINE_BYTES,
    ignore: Iterable[str] | str = (),
    select: Iterable[str] | str = (),
) -> FileReport:
    """Check JSON Lines data held in memory, as :func:`validate` checks a file.

    >>> validate_bytes(b'{"messages": []}\\n', schema="chat").ok
    False
    """
    opts = _options(
        max_errors=max_errors, max_line_bytes=max_line_bytes, ignore=ignore, select=select
    )
    if schema != "auto":
        formats.get_checker(schema)
    rep = FileReport(path=path, bytes=len(data))
    fh = io.BytesIO(data)
    file_problems, results, bases, dups = _check_open(
        fh,
        None,
        len(data),
        data[: reader.SNIFF_BYTES],
        schema=schema,
        max_size=parse_size(max_size),
        jobs=1,
        opts=opts,
        progress=None,
        parallel_threshold=DEFAULT_PARALLEL_THRESHOLD,
        rep=rep,
    )
    return _finish(rep, file_problems, results, bases, dups, opts)
