"""Fixtures of the splitter tests: small JSONL files on disk and the real CLI in a process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

MakeFile = Callable[..., Path]
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def record(i: int, pad: int = 0) -> bytes:
    """One chat record whose length varies with ``i`` (and grows with ``pad``)."""
    text = f"question {i} " + "x" * ((i * 37) % 50 + pad)
    doc = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}
    return json.dumps(doc).encode()


@pytest.fixture
def make_jsonl(tmp_path: Path) -> MakeFile:
    """Write ``count`` records as ``name`` under tmp_path, with the given line ending."""

    def make(
        name: str = "train.jsonl",
        count: int = 40,
        *,
        eol: bytes = b"\n",
        final_newline: bool = True,
        pad: int = 0,
    ) -> Path:
        data = b"".join(record(i, pad) + eol for i in range(count))
        if not final_newline:
            data = data[: -len(eol)]
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


@pytest.fixture
def run_cli() -> RunCli:
    """Run ``python -m ftprep ARGS`` as a real process and capture its output."""

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ftprep", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
            check=False,
        )

    return run


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def ls() -> Callable[[Path], list[str]]:
    """Names in a directory, hidden ones included (an absent directory lists as empty)."""
    return listing
