"""Fixtures for upload/push tests: a loopback emulator, a client for it, small datasets."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from ftprep.client import FilesClient, RetryPolicy
from ftprep.emulator import Emulator, running


def chat_line(i: int, pad: int = 0) -> bytes:
    record = {
        "messages": [
            {"role": "user", "content": f"question {i} " + "x" * pad},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    }
    return orjson.dumps(record) + b"\n"


def write_chat(path: Path, n: int, *, start: int = 0, pad: int = 0) -> Path:
    path.write_bytes(b"".join(chat_line(i, pad) for i in range(start, start + n)))
    return path


@pytest.fixture
def canary_key() -> str:
    return f"sk-canary-{uuid.uuid4()}"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with running(tmp_path / "emulator-data") as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator, canary_key: str) -> Iterator[FilesClient]:
    # Retries without real waiting: the schedule is the client's business, not ours.
    with FilesClient(
        canary_key,
        base_url=emulator.base_url,
        retry=RetryPolicy(initial_backoff=0.0, max_backoff=0.0, jitter=0.0),
        sleep=lambda s: None,
    ) as c:
        yield c


def posts(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == "/v1/files")


# Test modules are imported with --import-mode=importlib and cannot import this file,
# so the helpers reach them as fixtures.
@pytest.fixture(name="write_chat")
def _write_chat() -> Callable[..., Path]:
    return write_chat


@pytest.fixture(name="posts")
def _posts() -> Callable[[Emulator], int]:
    return posts
