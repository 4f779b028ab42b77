"""Fixtures for the record-format tests: the corpus, a counting loopback server.

The corpus lives in ``tests/example-files/{positive,negative}/<case>.jsonl``. A
case may have a sidecar ``<case>.expected``: ``# comments``, ``@key=value``
options (``@schema=chat``, ``@max_size=123``) and ``LINE CODE`` pairs, where LINE
is a 1-based line number, ``-`` for a problem with no line, or ``*`` for any line
(whole-file problems may be reported with or without the line where they show).
A ``<case>.schema.json`` beside the case is the user schema it is validated with.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "example-files"


@dataclass(frozen=True)
class Case:
    kind: str  # "positive" | "negative"
    name: str
    path: Path
    expected: frozenset[tuple[str, str]]  # (line or "-" or "*", code)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def schema(self) -> str:
        user = self.path.with_name(f"{self.name}.schema.json")
        if user.exists():
            return str(user)
        return self.options.get("schema", "auto")

    @property
    def record_codes(self) -> frozenset[tuple[str, str]]:
        """The expected problems that record checks own (FT2xx-FT4xx)."""
        return frozenset(e for e in self.expected if e[1][:3] in ("FT2", "FT3", "FT4"))

    @property
    def whole_file(self) -> bool:
        """A case whose problem stops the reader before any record is checked."""
        return any(code.startswith("FT0") for _, code in self.expected)


def parse_expected(path: Path) -> tuple[frozenset[tuple[str, str]], dict[str, str]]:
    pairs: set[tuple[str, str]] = set()
    options: dict[str, str] = {}
    if not path.exists():
        return frozenset(), options
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            key, _, value = line[1:].partition("=")
            options[key.strip()] = value.strip()
            continue
        where, _, code = line.partition(" ")
        if not (where in ("-", "*") or where.isdigit()) or not code.startswith("FT"):
            raise ValueError(f"{path}:{n}: expected 'LINE CODE', got {raw!r}")
        pairs.add((where, code.strip()))
    return frozenset(pairs), options


def load_cases() -> list[Case]:
    cases = []
    for kind in ("positive", "negative"):
        for path in sorted((CORPUS / kind).glob("*.jsonl")):
            name = path.name[: -len(".jsonl")]
            expected, options = parse_expected(path.with_name(f"{name}.expected"))
            cases.append(Case(kind, name, path, expected, options))
    return cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_case" in metafunc.fixturenames:
        cases = load_cases()
        metafunc.parametrize("corpus_case", cases, ids=[c.id for c in cases])
    if "record_case" in metafunc.fixturenames:
        # Cases whose problem is the whole file never reach the record checker.
        cases = [c for c in load_cases() if not c.whole_file and not c.path.is_dir()]
        metafunc.parametrize("record_case", cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def corpus_cases() -> list[Case]:
    return load_cases()


class CountingServer:
    """A real HTTP server on 127.0.0.1 that serves one schema and counts requests."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def schema_server() -> Iterator[CountingServer]:
    with CountingServer() as server:
        yield server
