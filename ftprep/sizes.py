"""Byte sizes as users write them: ``500MB``, ``1.5GiB``, ``1048576``.

Decimal units step by 10^3 (``KB``, ``MB``, ``GB``), binary ones by 2^10 (``KiB``,
``MiB``, ``GiB``); a bare number or ``B`` is bytes.

>>> parse_size("500MB")
500000000
>>> parse_size("1 KiB")
1024
>>> format_size(500_000_000)
'500.0 MB'
"""

from __future__ import annotations

import re

from .errors import UsageError

#: Mistral documents 512 MB per file and its FAQ reports 413 above about 500 MB.
DEFAULT_MAX_SIZE = 500_000_000
#: Mistral caps a validation file at 1 MB.
DEFAULT_VALIDATION_SIZE = 1_000_000

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """Parse a size into bytes; raise :class:`~ftprep.errors.UsageError` if malformed."""
    if isinstance(text, int):
        if text < 1:
            raise UsageError(f"size must be at least 1 byte, got {text}")
        return text
    m = _SIZE_RE.match(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise UsageError(
            f"invalid size {text!r}: use a number with an optional unit "
            "B, KB, MB, GB (10^3 steps) or KiB, MiB, GiB (2^10 steps), e.g. 500MB"
        )
    value = int(float(m.group(1)) * _UNITS[unit])
    if value < 1:
        raise UsageError(f"size must be at least 1 byte, got {text!r}")
    return value


def format_size(n: int) -> str:
    """Render a byte count for people, in decimal units."""
    for unit, step in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n} B"
