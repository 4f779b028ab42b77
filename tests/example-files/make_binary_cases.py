"""Regenerate the corpus cases that are compressed or binary (catalogue rows 32-33).

Run from anywhere: ``python tests/example-files/make_binary_cases.py``. The output
is deterministic (fixed timestamps), so rerunning it leaves git clean.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "negative"
RECORD = (
    b'{"messages": [{"role": "user", "content": "How often should I oil my chain?"}, '
    b'{"role": "assistant", "content": "Every 150 to 300 km, and after rain."}]}\n'
)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("train.jsonl", date_time=(2024, 1, 1, 0, 0, 0))
        z.writestr(info, RECORD)
    return buf.getvalue()


CASES = {
    "gzip-compressed": (gzip.compress(RECORD, mtime=0), "gzip"),
    "bz2-compressed": (bz2.compress(RECORD), "bzip2"),
    "xz-compressed": (lzma.compress(RECORD), "xz"),
    "zip-archive": (_zip(), "zip"),
    # No zstd or Parquet writer in the standard library: the magic numbers are what
    # a validator must recognise, so a frame header with filler is enough.
    "zstd-compressed": (b"\x28\xb5\x2f\xfd\x04\x58\x61\x00\x00" + RECORD[:40], "zstd"),
    "parquet-file": (b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00PAR1", "Parquet"),
}


def main() -> None:
    for name, (data, kind) in CASES.items():
        (HERE / f"{name}.jsonl").write_bytes(data)
        (HERE / f"{name}.expected").write_text(
            f"# catalogue rows 32-33: {kind} content under a .jsonl name\n* FT004\n"
        )


if __name__ == "__main__":
    main()
