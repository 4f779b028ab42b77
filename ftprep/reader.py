"""Reading a dataset as bytes: opening it safely, sniffing the whole file, splitting lines.

JSON Lines separates records with ``\\n`` and nothing else. Text mode, ``splitlines``
and friends also break on a lone ``\\r``, U+2028 or U+0085 inside a string, so this
module never decodes: it reads bytes in chunks and splits on ``b"\\n"`` only (a
``\\r`` before it is JSON whitespace, so CRLF files read fine). Memory stays bounded
whatever the file size: a line longer than ``max_line_bytes`` is measured and
skipped, never held whole.

>>> import io
>>> [(off, line) for off, line, _ in iter_lines(io.BytesIO(b'{"a":1}\\r\\n{"b":"x\\ry"}'))]
[(0, b'{"a":1}\\r'), (9, b'{"b":"x\\ry"}')]
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson

from .errors import InputError
from .problems import Problem
from .progress import ProgressCallback

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_LINE_BYTES",
    "SNIFF_BYTES",
    "Sniff",
    "iter_lines",
    "open_regular",
    "same_file",
    "sniff",
]

#: Longest line read whole (FT110 above it). A chat record with long documents stays
#: far below this; a line this long is almost always a file that is not JSON Lines.
DEFAULT_MAX_LINE_BYTES = 64 * 2**20
#: Bytes read per system call: large enough that the per-chunk work is noise.
CHUNK_SIZE = 2**20
#: Bytes looked at before line work: magic numbers, BOMs, UTF-16/32, pretty-printed JSON.
SNIFF_BYTES = 2**20

_BOM = b"\xef\xbb\xbf"
# (prefix, name, fix) for content that is not text; the first match wins.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (zstd -d)"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (xz -d)"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2)"),
    (b"\x04\x22\x4d\x18", "lz4-compressed", "decompress it first (lz4 -d)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract the .jsonl file from it"),
    (b"PK\x03\x04", "a zip archive", "extract the .jsonl file from it"),
    (b"PK\x05\x06", "an empty zip archive", "extract the .jsonl file from it"),
    (b"PAR1", "a Parquet file", "convert it to JSON Lines first"),
    (b"ARROW1", "an Arrow file", "convert it to JSON Lines first"),
    (b"Obj\x01", "an Avro file", "convert it to JSON Lines first"),
    (b"SQLite format 3\x00", "an SQLite database", "export the records as JSON Lines"),
    (b"%PDF", "a PDF document", "export the records as JSON Lines"),
    (b"\x89PNG", "a PNG image", "pass the .jsonl file instead"),
    (b"\x7fELF", "an executable", "pass the .jsonl file instead"),
)
_UTF32 = ((b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\x00\x00\xfe\xff", "UTF-32BE"))
_UTF16 = ((b"\xff\xfe", "UTF-16LE"), (b"\xfe\xff", "UTF-16BE"))
# Bytes that never occur in UTF-8 JSON text outside a broken file (tab, LF, CR are fine).
# NUL is left out: runs of NUL are padding (FT005), reported where they show.
_CONTROL = bytes(b for b in range(1, 32) if b not in (9, 10, 13)) + b"\x7f"
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)
# A value ending, carriage returns, and the next value starting: records split by CR only.
_BARE_CR = re.compile(rb"[}\]][ \t]*\r[ \t\r]*[{\[]")
#: A run of this many NUL bytes is padding (a preallocated or crash-damaged file).
NUL_RUN = b"\x00" * 4


def open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """Open ``path`` for reading only if it is a regular file; raise InputError otherwise.

    The path is checked with ``stat`` before it is opened, so a FIFO or a device is
    never opened (opening a FIFO blocks until a writer comes). The open itself is
    non-blocking and the opened file is checked again, in case the path was swapped.

    >>> open_regular("/no/such/file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ftprep.errors.InputError: no such file
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as e:
        raise InputError(f"cannot read it ({e.strerror or e})", path=path) from None
    _require_regular(path, st)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise InputError("no such file", path=path) from None
        raise InputError(f"cannot read it ({e.strerror or e})", path=path) from None
    try:
        st = os.fstat(fd)
        _require_regular(path, st)
        return os.fdopen(fd, "rb", buffering=0), st
    except BaseException:
        os.close(fd)
        raise


def _require_regular(path: str, st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        what = "it is a directory"
    elif stat.S_ISFIFO(mode):
        what = "it is a FIFO (named pipe), not a regular file"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "it is a device, not a regular file"
    elif stat.S_ISSOCK(mode):
        what = "it is a socket, not a regular file"
    else:
        what = "it is not a regular file"
    raise InputError(what, path=path)


def same_file(before: os.stat_result, after: os.stat_result) -> bool:
    """True when two stats describe the same, unchanged file (inode, size, mtime)."""
    return (
        before.st_ino == after.st_ino
        and before.st_dev == after.st_dev
        and before.st_size == after.st_size
        and before.st_mtime_ns == after.st_mtime_ns
    )


def iter_lines(
    fh: BinaryIO,
    start: int = 0,
    end: int | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
) -> Iterator[tuple[int, bytes | int, bool]]:
    """Yield ``(offset, line, terminated)`` for each line of ``fh[start:end]``.

    ``line`` is the line's bytes without its ``\\n``, or, for a line longer than
    ``max_line_bytes``, its length as an ``int`` (the bytes were skipped).
    ``terminated`` is False only for a last line with no ``\\n`` after it. A final
    ``\\n`` ends the last line; it does not start an empty one.

    >>> import io
    >>> list(iter_lines(io.BytesIO(b"ab\\n\\nxyz"), max_line_bytes=2))
    [(0, b'ab', True), (3, b'', True), (4, 3, False)]
    """
    fh.seek(start)
    pos = start
    line_start = start
    pending: list[bytes] = []
    pending_len = 0
    skipping = -1  # length so far of an over-long line being skipped, or -1
    while end is None or pos < end:
        chunk = fh.read(chunk_size if end is None else min(chunk_size, end - pos))
        if not chunk:
            break
        pos += len(chunk)
        if progress is not None:
            progress(len(chunk))
        if skipping >= 0:
            nl = chunk.find(b"\n")
            if nl < 0:
                skipping += len(chunk)
                continue
            yield line_start, skipping + nl, True
            line_start += skipping + nl + 1
            skipping = -1
            chunk = chunk[nl + 1 :]
        parts = chunk.split(b"\n")
        tail = parts.pop()
        if parts and pending:
            first = parts[0]
            if pending_len + len(first) > max_line_bytes:
                # Report the length without ever joining the pieces.
                n = pending_len + len(first)
                yield line_start, n, True
                line_start += n + 1
                del parts[0]
            else:
                pending.append(first)
                parts[0] = b"".join(pending)
            pending = []
            pending_len = 0
        for part in parts:
            if len(part) > max_line_bytes:
                yield line_start, len(part), True
            else:
                yield line_start, part, True
            line_start += len(part) + 1
        if not tail:
            continue
        if pending_len + len(tail) > max_line_bytes:
            skipping = pending_len + len(tail)
            pending = []
            pending_len = 0
        else:
            pending.append(tail)
            pending_len += len(tail)
    if skipping >= 0:
        yield line_start, skipping, False
    elif pending:
        yield line_start, b"".join(pending), False


@dataclass
class Sniff:
    """What the first bytes say about the whole file.

    ``problems`` are whole-file findings; ``stop`` means line work would only add
    noise (a compressed or UTF-16 file); ``skip`` is the number of bytes to skip
    at the start (a UTF-8 BOM, already reported).
    """

    problems: list[Problem] = field(default_factory=list)
    stop: bool = False
    skip: int = 0


def _error(code: str, message: str, line: int | None = None) -> Problem:
    return Problem(severity="error", code=code, message=message, line=line)


def sniff(head: bytes, size: int) -> Sniff:
    """Look at the first bytes of a file (up to :data:`SNIFF_BYTES`) before line work.

    >>> sniff(b"\\x1f\\x8b\\x08\\x00", 4).problems[0].code
    'FT004'
    >>> sniff(b'{"text": "ok"}\\n', 15).problems
    []
    """
    out = Sniff()
    if not head:
        return out
    for prefix, name in _UTF32:
        if head.startswith(prefix):
            return _stop(
                out, "FT003", f"the file is {name}-encoded, not UTF-8: re-encode it as UTF-8"
            )
    for prefix, name in _UTF16:
        if head.startswith(prefix):
            return _stop(
                out, "FT003", f"the file is {name}-encoded, not UTF-8: re-encode it as UTF-8"
            )
    for prefix, name, fix in _MAGIC:
        if head.startswith(prefix):
            return _stop(out, "FT004", f"the file is {name}, not JSON Lines text: {fix}")
    sample = head[:4096]
    lead = sample.lstrip(b"\x00")
    if not lead:
        return _stop(
            out,
            "FT005",
            "the file starts with NUL bytes (a preallocated or damaged file) at byte offset 0: "
            "restore it from a good copy",
            line=1,
        )
    encoding = _utf16_or_32(sample)
    if encoding is not None:
        return _stop(
            out, "FT003", f"the file looks {encoding}-encoded, not UTF-8: re-encode it as UTF-8"
        )
    controls = len(sample.translate(None, _NOT_CONTROL))
    if controls > max(8, len(sample) // 10):
        return _stop(
            out,
            "FT004",
            "the file holds binary data, not JSON Lines text: pass the .jsonl file, "
            "or convert the data to JSON Lines",
        )
    if head.startswith(_BOM):
        out.problems.append(
            _error(
                "FT002",
                "the file starts with a UTF-8 byte order mark (BOM), which JSON Lines forbids: "
                "save it as UTF-8 without BOM",
                line=1,
            )
        )
        out.skip = len(_BOM)
    body = head[out.skip :]
    if b"\n" not in body and _BARE_CR.search(body):
        return _stop(
            out,
            "FT009",
            "records are separated by bare CR (\\r) line ends, so the file reads as one line: "
            "convert the line ends to \\n (e.g. tr '\\r' '\\n')",
        )
    if _pretty_printed(body, size - out.skip):
        first = body.lstrip()[:1]
        what = "a JSON array" if first == b"[" else "a pretty-printed JSON document"
        return _stop(
            out,
            "FT006",
            f"the file is {what}, not JSON Lines: write one JSON object per line "
            "(e.g. jq -c '.[]' for an array)",
            line=1,
        )
    return out


def _stop(out: Sniff, code: str, message: str, line: int | None = None) -> Sniff:
    out.problems.append(_error(code, message, line))
    out.stop = True
    return out


def _utf16_or_32(sample: bytes) -> str | None:
    # ASCII text in UTF-16/32 without BOM: NULs at a fixed position of every 2 or 4 bytes.
    n = len(sample) // 4 * 4
    if n < 4:
        return None
    s = sample[:n]
    quarters = [s[i::4].count(0) for i in range(4)]
    per = n // 4
    if quarters[1] == quarters[2] == quarters[3] == per and quarters[0] < per:
        return "UTF-32LE"
    if quarters[0] == quarters[1] == quarters[2] == per and quarters[3] < per:
        return "UTF-32BE"
    evens, odds = s[0::2].count(0), s[1::2].count(0)
    half = n // 2
    if odds >= half * 0.9 and evens < half * 0.1:
        return "UTF-16LE"
    if evens >= half * 0.9 and odds < half * 0.1:
        return "UTF-16BE"
    return None


def _pretty_printed(body: bytes, size: int) -> bool:
    """True when the first JSON value spans several lines (an array or an indented object)."""
    stripped = body.lstrip(b" \t\r\n")
    if stripped[:1] not in (b"[", b"{"):
        return False
    nl = stripped.find(b"\n")
    if nl < 0:
        return False
    first = stripped[:nl]
    try:
        orjson.loads(first)
        return False  # the first line is a value of its own: ordinary JSON Lines
    except orjson.JSONDecodeError:
        pass
    if first.rstrip(b" \t\r") not in (b"[", b"{"):
        # Line 1 is an incomplete value only when it runs to its end unfinished.
        try:
            orjson.loads(first + b" ")
        except orjson.JSONDecodeError as e:
            if "end of data" not in e.msg:
                return False
    rest = stripped[nl:]
    second = len(rest) - len(rest.lstrip(b" \t\r\n"))
    if second == len(rest):
        return False  # nothing after line 1: a lone broken line, not a document
    # Where line 2's content starts, in characters (orjson reports positions in characters).
    start2 = len(stripped[: nl + second].decode("utf-8", "ignore"))
    whole = len(body) >= size
    text = stripped if whole else stripped[: stripped.rfind(b"\n") + 1]
    try:
        orjson.loads(text)
        return True
    except orjson.JSONDecodeError as e:
        # The value goes on into line 2 and beyond: it ends later, or the sniffed bytes end first.
        return e.pos > start2 and (not whole or "end of data" not in e.msg or e.pos > start2 + 1)
