"""Worker processes over byte ranges give exactly the report of one process reading it all."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import ftprep
from ftprep.validator import _range_bounds

from .conftest import chat, tool_chat


def dataset(n: int, seed: int) -> bytes:
    """Clean records with defects of every kind sprinkled in, duplicates across the file."""
    rng = random.Random(seed)
    defects = [
        b"",
        b"{bad json}",
        b'{"messages": [],}',
        b'{"messages": [{"role": "user", "content": "a", "role": "user"}]}',
        b"\xef\xbb\xbf" + chat("bom"),
        b'{"text": "caf\xe9"}',
        b"[1, 2]",
        chat("dup"),
        b'{"messages": [{"role": "bot", "content": "x"}]}',
    ]
    lines = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.08:
            lines.append(rng.choice(defects))
        elif roll < 0.12:
            lines.append(tool_chat(i))
        else:
            lines.append(chat(f"question {i} " + "x" * rng.randint(0, 300), f"answer {i}"))
    end = b"\r\n" if seed % 2 else b"\n"
    return end.join(lines) + end + b'{"messages": [{"role": "user"'  # truncated last line


@pytest.mark.parametrize("seed", [1, 2])
def test_parallel_ranges_give_the_serial_report(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(dataset(1500, seed))
    serial = ftprep.validate([path], jobs=1)
    parallel = ftprep.validate([path], jobs=2, parallel_threshold=4096)
    assert serial.to_dict() == parallel.to_dict()
    codes = {p.code for p in serial.files[0].problems}
    assert {"FT101", "FT103", "FT104", "FT108", "FT109", "FT111", "FT112", "FT120"} <= codes


def test_parallel_max_errors_keeps_the_first_problems_and_counts_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(dataset(1500, 3))
    serial = ftprep.validate([path], jobs=1, max_errors=7)
    parallel = ftprep.validate([path], jobs=2, max_errors=7, parallel_threshold=4096)
    assert serial.to_dict() == parallel.to_dict()
    f = serial.files[0]
    assert len(f.problems) == 7 and f.problems_omitted > 0
    full = ftprep.validate([path], jobs=1).files[0]
    assert f.problems == full.problems[:7]
    assert f.error_count == full.error_count and f.warning_count == full.warning_count


def test_ranges_end_on_line_boundaries_and_cover_the_file(tmp_path: Path) -> None:
    data = dataset(300, 4)
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        ranges = _range_bounds(fh, 0, len(data), 9)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start and data[end - 1 : end] == b"\n"


@pytest.mark.timeout(60)
def test_a_script_read_from_stdin_falls_back_to_one_process(tmp_path: Path) -> None:
    # Spawned workers re-import the main script; `python -` has none on disk.
    path = tmp_path / "data.jsonl"
    path.write_bytes(dataset(300, 5))
    script = (
        "import ftprep, json, sys\n"
        f"r = ftprep.validate([{str(path)!r}], jobs=2, parallel_threshold=1024)\n"
        "print(json.dumps(r.to_dict()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == ftprep.validate([path], jobs=1).to_dict()
