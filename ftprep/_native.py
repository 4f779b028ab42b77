"""Byte passes over a line: from the C module ``ftprep._speedups`` when it was built.

The validator asks three things of every line besides its parse (UTF-8 validity, the
number of ``:`` bytes, a fingerprint for duplicate records) and two of every message
(whether its content is a string that is plainly not blank, and its ``:`` bytes).
The C module answers them in quick passes over bytes already in the cache; the
pure-Python versions below give the same answers, except for the hash half of a
fingerprint (a 32-bit hash above the length's low 32 bits): fingerprints are only
compared within one run, and a run uses one of the two throughout. The package works
without the C module (no compiler at install time), only slower; setting
``FTPREP_NO_SPEEDUPS=1`` uses the Python versions even when it is there.

>>> scan(b'{"a": "\\u00e9:"}\\r')[0], scan(b'{"a": "\\xff"}')
(2, None)
>>> colons(b"a:b:c"), [divmod(string_facts(v), 4) for v in (b'"a:b"', b'" hi"', b"null")]
(2, [(1, 0), (0, 1), (0, 2)])
"""

from __future__ import annotations

import os
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer as Buffer

__all__ = ["NATIVE", "colons", "fingerprint", "scan", "string_facts"]


def _py_colons(data: Buffer) -> int:
    # bytes.count goes byte by byte; replace() finds a single byte with memchr.
    raw = bytes(data)
    return len(raw) - len(raw.replace(b":", b""))


def _py_fingerprint(data: Buffer) -> int:
    raw = bytes(data)
    return (zlib.crc32(raw) << 32) | (len(raw) & 0xFFFFFFFF)


def _py_scan(line: bytes) -> tuple[int, int] | None:
    if not line.isascii():
        try:
            line.decode()
        except UnicodeDecodeError:
            return None
    if line.endswith(b"\r"):
        line = line[:-1]
    return len(line) - len(line.replace(b":", b"")), _py_fingerprint(line)


# First bytes of a JSON string's text that prove it is not blank: a printable ASCII
# character other than the quote and the backslash (an escape may be whitespace), or
# the lead byte of a UTF-8 sequence that no whitespace character starts with
# (Unicode's spaces begin with C2, E1, E2 or E3).
_NOT_BLANK_START = frozenset(
    {*range(0x21, 0x7F), *range(0xC3, 0xE1), *range(0xE4, 0x100)} - {0x22, 0x5C}
)


def _py_string_facts(value: Buffer) -> int:
    raw = bytes(value)
    if len(raw) < 2 or raw[0] != 0x22:
        kind = 2
    else:
        kind = 0 if raw[1] in _NOT_BLANK_START else 1
    return 4 * _py_colons(raw) + kind


NATIVE: bool
try:
    if os.environ.get("FTPREP_NO_SPEEDUPS"):
        raise ImportError("FTPREP_NO_SPEEDUPS is set")
    from ._speedups import colons, fingerprint, scan, string_facts
except ImportError:
    NATIVE = False
    colons, fingerprint, scan, string_facts = (
        _py_colons,
        _py_fingerprint,
        _py_scan,
        _py_string_facts,
    )
else:
    NATIVE = True
