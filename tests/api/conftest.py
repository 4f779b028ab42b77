"""Fixtures of the Files API tests: small datasets on disk, a scripted fake server
over httpx.MockTransport, and a real emulator on a loopback port."""

from __future__ import annotations

import email.parser
import email.policy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftprep.client import FilesClient, RetryPolicy

CHAT_LINE = {
    "messages": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
}


def write_chat(path: Path, records: int = 3, tag: str = "") -> Path:
    lines = []
    for i in range(records):
        record = json.loads(json.dumps(CHAT_LINE))
        record["messages"][0]["content"] += f" #{i}{tag}"
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    return write_chat(tmp_path / "train.jsonl")


@pytest.fixture
def canary() -> str:
    return f"sk-canary-{uuid.uuid4()}"


def file_object(**overrides: Any) -> dict[str, Any]:
    obj = {
        "id": str(uuid.uuid4()),
        "object": "file",
        "bytes": 10,
        "created_at": 1_700_000_000,
        "filename": "train.jsonl",
        "purpose": "fine-tune",
        "sample_type": "instruct",
        "source": "upload",
        "num_lines": 1,
        "mimetype": "application/jsonl",
        "signature": "abcd",
    }
    obj.update(overrides)
    return obj


def multipart_parts(
    request: httpx.Request, body: bytes
) -> dict[str, tuple[str | None, str, bytes]]:
    """name -> (filename, content type, payload), decoded by the stdlib's MIME parser."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        payload = part.get_payload(decode=True)
        parts[part.get_param("name", header="content-disposition")] = (
            part.get_filename(),
            part.get_content_type(),
            payload,
        )
    return parts


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeAPI:
    """A scripted Files API: each request takes the next step of the script.

    A step is a response, an exception to raise once the request body has been read
    (a lost response), or a function of the request. Past the script every upload
    succeeds. Every request and its full body are kept.
    """

    script: list[Step] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        self.requests.append(request)
        step = self.script.pop(0) if self.script else None
        if step is None:
            return httpx.Response(200, json=file_object())
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(request)
        return step


@dataclass
class Harness:
    client: FilesClient
    api: FakeAPI
    sleeps: list[float]


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    """Build a client over a FakeAPI; sleeps are recorded, never slept."""
    made: list[FilesClient] = []

    def make(*script: Step, retry: RetryPolicy | None = None, **kwargs: Any) -> Harness:
        api = FakeAPI(list(script))
        sleeps: list[float] = []
        kwargs.setdefault("api_key", "sk-test")
        client = FilesClient(
            transport=httpx.MockTransport(api),
            retry=retry or RetryPolicy(jitter=0),
            sleep=sleeps.append,
            clock=lambda: 1_695_998_817.0,  # Fri, 29 Sep 2023 14:46:57 GMT
            **kwargs,
        )
        made.append(client)
        return Harness(client, api, sleeps)

    yield make
    for client in made:
        client.close()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from ftprep.emulator import running

    with running(tmp_path / "emulator-data") as emu:
        yield emu


# Test modules are imported with --import-mode=importlib and cannot import this file:
# the helpers reach them as fixtures.
@pytest.fixture(name="write_chat")
def _write_chat() -> Callable[..., Path]:
    return write_chat


@pytest.fixture(name="file_object")
def _file_object() -> Callable[..., dict[str, Any]]:
    return file_object


@pytest.fixture(name="multipart_parts")
def _multipart_parts() -> Callable[
    [httpx.Request, bytes], dict[str, tuple[str | None, str, bytes]]
]:
    return multipart_parts
