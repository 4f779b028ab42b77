"""A local server that speaks the Files API wire format, for trying ftprep without a key
and for testing code that uploads.

>>> from ftprep.emulator import running                         # doctest: +SKIP
>>> with running("emu-data") as emu:                            # doctest: +SKIP
...     with ftprep.FilesClient("any-key", base_url=emu.base_url) as client:
...         client.upload("train.jsonl")

It is a Starlette app served by uvicorn (the optional extra ``ftprep[emulator]``; both are
imported only when a server is built). Files and their metadata persist in the data
directory across restarts. Faults can be scripted from Python (``emu.fail_next(503)``)
or over HTTP (``POST /_emulator/faults``, loopback clients only), so a test can drive an
emulator that runs in another process. ``docs/files-api.md`` lists every endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import hashlib
import hmac
import importlib
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import UsageError
from .sizes import DEFAULT_MAX_SIZE

if TYPE_CHECKING:  # pragma: no cover
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "Emulator",
    "EmulatorState",
    "Fault",
    "RequestRecord",
    "create_app",
    "running",
    "serve",
]

INSTALL_HINT = "the emulator needs starlette and uvicorn: pip install 'ftprep[emulator]'"
PURPOSES = ("fine-tune", "batch", "ocr", "audio")
#: The multipart framing around the file (boundaries, part headers, the purpose field)
#: is allowed on top of ``max_size`` when judging a request's Content-Length.
FORM_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
#: Line errors listed in a 422 body; the description still counts them all.
MAX_REPORTED_ERRORS = 100
METADATA_VERSION = 1

_log = logging.getLogger("ftprep.emulator")


def _require_extra() -> None:
    try:
        importlib.import_module("starlette")
        importlib.import_module("uvicorn")
    except ImportError as e:
        raise UsageError(INSTALL_HINT) from e


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One scripted misbehaviour, applied to the next ``times`` matching requests.

    ``method`` and ``path`` (a glob such as ``/v1/files/*``) narrow which requests
    match; ``None`` matches all. ``delay`` waits that many seconds first. Then either
    ``status`` answers at once with that status (and ``retry_after`` as the
    ``Retry-After`` header, ``body`` as the JSON body), or ``drop`` handles the request
    normally (an upload is stored) and closes the connection without any answer.

    >>> Fault(status=503, method="POST").matches("POST", "/v1/files")
    True
    """

    status: int | None = None
    times: int = 1
    method: str | None = None
    path: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    body: Any = None

    def __post_init__(self) -> None:
        if self.status is not None and not (100 <= self.status <= 599):
            raise UsageError(f"fault status must be an HTTP status, got {self.status}")
        if self.times < 1:
            raise UsageError(f"fault times must be at least 1, got {self.times}")
        if self.delay < 0:
            raise UsageError("fault delay must not be negative")
        if self.status is not None and self.drop:
            raise UsageError("a fault either answers with a status or drops the connection")
        if self.status is None and not self.drop and not self.delay:
            raise UsageError("a fault needs a status, drop=true, or a delay")
        if self.method is not None:
            self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Build from the JSON of ``POST /_emulator/faults``; raise UsageError if bad."""
        if not isinstance(data, dict):
            raise UsageError("a fault must be a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown fault fields {unknown}; known: {sorted(known)}")
        try:
            fault = cls(**data)
        except TypeError as e:
            raise UsageError(f"bad fault: {e}") from None
        for name, kind in (("status", int), ("times", int), ("delay", (int, float))):
            value = getattr(fault, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
                raise UsageError(f"fault {name} must be a number")
        if fault.retry_after is not None:
            fault.retry_after = str(fault.retry_after)
        return fault


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received (control requests are not recorded)."""

    method: str
    path: str
    status: int | None
    dropped: bool = False


# --------------------------------------------------------------------------- state


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class EmulatorState:
    """The files, the scripted faults and the request log of one emulator.

    Shared between the server's event loop and the code that drives it (a test), so
    every method is thread-safe. Metadata is kept in ``DATA_DIR/files.json`` (written
    atomically) and each file's bytes in ``DATA_DIR/content/<id>``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        api_key: str | None = None,
        max_size: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.max_size = max_size if max_size is not None else DEFAULT_MAX_SIZE
        self._api_key = api_key
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._requests: list[RequestRecord] = []
        self._clock_offset = 0.0
        self._files: dict[str, dict[str, Any]] = {}
        self._seq = 0
        try:
            self.content_dir.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            for leftover in self.tmp_dir.iterdir():  # uploads cut short by a stop
                leftover.unlink(missing_ok=True)
            self._signing_key = self._load_signing_key()
        except OSError as e:
            raise UsageError(f"emulator data directory {self.data_dir}: {e.strerror or e}") from e
        self._load()

    # paths
    @property
    def content_dir(self) -> Path:
        return self.data_dir / "content"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def metadata_path(self) -> Path:
        return self.data_dir / "files.json"

    def content_path(self, file_id: str) -> Path:
        return self.content_dir / file_id

    # auth
    def key_accepted(self, token: str) -> bool:
        if self._api_key is None:
            return bool(token)
        return hmac.compare_digest(token.encode(), self._api_key.encode())

    # clock
    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (signed URLs expire, created_at moves)."""
        with self._lock:
            self._clock_offset += seconds

    # faults
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | float | None = None,
        method: str | None = None,
        path: str | None = None,
        body: Any = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``."""
        self.add_fault(
            Fault(
                status=status,
                times=times,
                retry_after=None if retry_after is None else str(retry_after),
                method=method,
                path=path,
                body=body,
                delay=delay,
            )
        )

    def delay_next(
        self, seconds: float, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Hold the next ``times`` matching requests for ``seconds`` before handling them."""
        self.add_fault(Fault(delay=seconds, times=times, method=method, path=path))

    def drop_next(
        self, *, times: int = 1, method: str | None = "POST", path: str | None = "/v1/files"
    ) -> None:
        """Handle the next matching requests (uploads are stored), then close the
        connection without an answer: the client sees a lost response."""
        self.add_fault(Fault(drop=True, times=times, method=method, path=path))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(f)) for f in self._faults]

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[i]
                    return fault
        return None

    # request log
    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self._requests.append(entry)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # files
    def files(self) -> list[dict[str, Any]]:
        """Every stored file object, newest first."""
        with self._lock:
            entries = sorted(self._files.values(), key=lambda e: e["seq"], reverse=True)
            return [dict(e["object"]) for e in entries]

    def get(self, file_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._files.get(file_id)
            return dict(entry["object"]) if entry else None

    def find_duplicate(self, filename: str, sha256: str) -> dict[str, Any] | None:
        with self._lock:
            for entry in self._files.values():
                if entry["sha256"] == sha256 and entry["object"]["filename"] == filename:
                    return dict(entry["object"])
        return None

    def add_file(self, upload: Path, obj: dict[str, Any], sha256: str) -> dict[str, Any]:
        os.replace(upload, self.content_path(obj["id"]))
        with self._lock:
            self._seq += 1
            self._files[obj["id"]] = {"object": obj, "sha256": sha256, "seq": self._seq}
            self._save_locked()
        return dict(obj)

    def delete(self, file_id: str) -> bool:
        with self._lock:
            if self._files.pop(file_id, None) is None:
                return False
            self._save_locked()
        self.content_path(file_id).unlink(missing_ok=True)
        return True

    # signed URLs
    def sign(self, file_id: str, expires: int) -> str:
        message = f"{file_id}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def signature_valid(self, file_id: str, expires: str, token: str) -> bool:
        if not expires.isdigit() or not token:
            return False
        expected = self.sign(file_id, int(expires))
        return hmac.compare_digest(expected, token) and int(expires) >= self.now()

    # persistence
    def _load_signing_key(self) -> bytes:
        path = self.data_dir / "signing-key"
        try:
            key = path.read_bytes()
            if len(key) >= 32:
                return key
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key

    def _load(self) -> None:
        try:
            raw = self.metadata_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            raise UsageError(f"{self.metadata_path}: cannot read: {e.strerror or e}") from e
        try:
            doc = json.loads(raw)
            entries = doc["files"]
            if doc.get("version") != METADATA_VERSION or not isinstance(entries, list):
                raise ValueError("unknown layout")
            for entry in entries:
                obj, sha, seq = entry["object"], entry["sha256"], int(entry["seq"])
                if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                    raise ValueError("bad entry")
                if not self.content_path(obj["id"]).is_file():
                    _log.warning("emulator: content of %s is missing; dropping it", obj["id"])
                    continue
                self._files[obj["id"]] = {"object": obj, "sha256": sha, "seq": seq}
                self._seq = max(self._seq, seq)
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(
                f"{self.metadata_path} is not emulator metadata ({e}); move it aside or "
                "use another --data-dir"
            ) from None

    def _save_locked(self) -> None:
        entries = sorted(self._files.values(), key=lambda e: e["seq"])
        doc = {"version": METADATA_VERSION, "files": entries}
        _atomic_write(self.metadata_path, json.dumps(doc, indent=1).encode())


# --------------------------------------------------------------------------- multipart


class _TooLarge(Exception):
    pass


class _BadForm(Exception):
    pass


@dataclass
class _Form:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    lines: int = 0
    sha256: str = ""
    seen_file: bool = False


_PARAM_RE = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _header_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, raw in _PARAM_RE.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[name.lower()] = raw
    return params


def _boundary(content_type: str) -> bytes | None:
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    boundary = _header_params(content_type).get("boundary", "")
    if not (1 <= len(boundary) <= 200):
        return None
    return boundary.encode("latin-1", "replace")


async def _read_form(
    chunks: AsyncIterator[bytes], boundary: bytes, sink: BinaryIO, max_file: int
) -> _Form:
    """Parse a multipart/form-data body as it streams in; the ``file`` part goes to
    ``sink`` chunk by chunk (never held whole), counted against ``max_file``."""
    form = _Form()
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    buf = bytearray()
    digest = hashlib.sha256()
    last_byte = b""

    async def fill() -> None:
        try:
            buf.extend(await anext(chunks))
        except StopAsyncIteration:
            raise _BadForm("the multipart body ends before its closing boundary") from None

    while (start := buf.find(delimiter)) < 0:
        if len(buf) > len(delimiter):
            del buf[: len(buf) - len(delimiter)]  # preamble: ignored
        await fill()
    del buf[: start + len(delimiter)]
    while True:
        while len(buf) < 2:
            await fill()
        if buf[:2] == b"--":
            break
        while (eol := buf.find(b"\r\n")) < 0:
            if len(buf) > 1024:
                raise _BadForm("malformed multipart boundary line")
            await fill()
        del buf[: eol + 2]
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > MAX_PART_HEADER_BYTES:
                raise _BadForm("multipart part headers are too long")
            await fill()
        headers: dict[str, str] = {}
        for line in bytes(buf[:end]).decode("utf-8", "replace").split("\r\n"):
            header, _, header_value = line.partition(":")
            headers[header.strip().lower()] = header_value.strip()
        del buf[: end + 4]
        disposition = _header_params(headers.get("content-disposition", ""))
        part_name = disposition.get("name", "")
        is_file = part_name == "file"
        if is_file:
            if form.seen_file:
                raise _BadForm("more than one 'file' part")
            form.seen_file = True
            form.filename = disposition.get("filename", "upload")
            form.content_type = headers.get("content-type")
        value = bytearray()

        def emit(
            data: bytes | bytearray,
            is_file: bool = is_file,
            value: bytearray = value,
            part_name: str = part_name,
        ) -> None:
            nonlocal last_byte
            if not data:
                return
            if is_file:
                form.size += len(data)
                if form.size > max_file:
                    raise _TooLarge()
                sink.write(data)
                digest.update(data)
                form.lines += data.count(b"\n")
                last_byte = bytes(data[-1:])
            else:
                value.extend(data)
                if len(value) > MAX_FIELD_BYTES:
                    raise _BadForm(f"form field {part_name!r} is too long")

        while (end := buf.find(separator)) < 0:
            keep = len(separator) - 1  # the tail may be the start of the separator
            if len(buf) > keep:
                emit(buf[: len(buf) - keep])
                del buf[: len(buf) - keep]
            await fill()
        emit(buf[:end])
        del buf[: end + len(separator)]
        if not is_file and part_name:
            form.fields[part_name] = value.decode("utf-8", "replace")
    if form.size and last_byte != b"\n":
        form.lines += 1  # a last line without its newline still counts
    form.sha256 = digest.hexdigest()
    return form


# --------------------------------------------------------------------------- content checks


_validator_missing_logged = False


def _validate_fine_tune(path: Path, max_size: int) -> tuple[list[dict[str, Any]], int] | None:
    """Run ftprep's own validator; ``None`` when it is not available in this build."""
    global _validator_missing_logged
    try:
        validator = importlib.import_module("ftprep.validator")
    except ModuleNotFoundError as e:
        if e.name != "ftprep.validator":
            raise
        if not _validator_missing_logged:
            _log.warning("emulator: ftprep.validator is missing; uploads are not checked")
            _validator_missing_logged = True
        return None
    report = validator.validate(
        [str(path)],
        schema="auto",
        max_size=max(max_size, 1),
        max_errors=MAX_REPORTED_ERRORS,
        jobs=1,
    )
    file_report = report.files[0]
    if file_report.ok:
        return [], 0
    errors = [
        {"message": p.message, "line_number": p.line} for p in file_report.problems if p.is_error
    ]
    return errors, file_report.error_count


def _detect_sample_type(path: Path, purpose: str) -> str:
    if purpose == "batch":
        return "batch_request"
    try:
        with open(path, "rb") as fh:
            for _ in range(100):
                line = fh.readline(1 << 20)
                if not line:
                    break
                if line.strip():
                    record = json.loads(line)
                    if isinstance(record, dict) and "messages" in record:
                        return "instruct"
                    if isinstance(record, dict) and "text" in record:
                        return "pretrain"
                    break
    except (OSError, ValueError):
        pass
    return "instruct" if purpose == "fine-tune" else "pretrain"


# --------------------------------------------------------------------------- the app


def _is_loopback(client: Any) -> bool:
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


def _detail_error(loc: list[Any], msg: str, kind: str, given: Any) -> dict[str, Any]:
    """A FastAPI-style validation body, as the real API sends for bad parameters."""
    return {"detail": [{"type": kind, "loc": loc, "msg": msg, "input": given}]}


class _Body:
    """A request body read straight from ASGI ``receive``, remembering whether the last
    part has arrived (draining a finished body would wait for the client forever)."""

    def __init__(self, receive: Callable[[], Any]) -> None:
        self._receive = receive
        self.done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            message = await self._receive()
            if message["type"] != "http.request":
                self.done = True
                raise _BadForm("the client went away before sending the whole body")
            self.done = not message.get("more_body", False)
            body = message.get("body", b"")
            if body:
                yield body

    async def drain(self) -> None:
        while not self.done:
            message = await self._receive()
            self.done = message["type"] != "http.request" or not message.get("more_body", False)


async def _drain(receive: Callable[[], Any]) -> None:
    """Read and discard the rest of a request body, so an early answer (401, 413) reaches
    a client that is still sending instead of a reset connection."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


# Live connections of emulator servers, by peer address: how a "drop" fault finds the
# socket of the request it must cut. Filled by the protocol class below.
_CONNECTIONS: dict[tuple[str, int], asyncio.BaseTransport] = {}


@functools.cache
def _protocol_class() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class _TrackedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # h11 writes a response's head and body separately; with Nagle on, the body
            # waits for the client's delayed ACK (~40 ms a request on loopback).
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.client is not None:
                _CONNECTIONS[(str(self.client[0]), int(self.client[1]))] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client is not None:
                _CONNECTIONS.pop((str(self.client[0]), int(self.client[1])), None)
            super().connection_lost(exc)

    return _TrackedH11Protocol


def create_app(state: EmulatorState) -> Callable[..., Any]:
    """The ASGI app of an emulator over ``state`` (Starlette behind a front door that
    applies faults, checks the key and logs requests)."""
    _require_extra()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = getattr(exc, "detail", "Not Found")
        return JSONResponse({"detail": detail}, status_code=status)

    def check_id(file_id: str) -> Response | None:
        try:
            uuid.UUID(file_id)
        except ValueError:
            return JSONResponse(
                _detail_error(
                    ["path", "file_id"],
                    "Input should be a valid UUID",
                    "uuid_parsing",
                    file_id[:100],
                ),
                status_code=422,
            )
        if state.get(file_id) is None:
            return JSONResponse({"detail": "File not found."}, status_code=404)
        return None

    async def upload(request: Request) -> Response:
        boundary = _boundary(request.headers.get("content-type", ""))
        if boundary is None:
            await _drain(request.receive)
            return JSONResponse(
                _detail_error(["body", "file"], "Field required", "missing", None),
                status_code=422,
            )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > state.max_size + FORM_OVERHEAD:
            await _drain(request.receive)
            return too_large()
        tmp = state.tmp_dir / f"{uuid.uuid4().hex}.part"
        body = _Body(request.receive)
        try:
            try:
                with open(tmp, "wb") as sink:
                    form = await _read_form(body.chunks(), boundary, sink, state.max_size)
                await body.drain()  # an epilogue after the closing boundary, if any
            except _TooLarge:
                await body.drain()
                return too_large()
            except _BadForm as e:
                await body.drain()
                return JSONResponse({"detail": f"Invalid multipart body: {e}"}, status_code=400)
            if not form.seen_file:
                return JSONResponse(
                    _detail_error(["body", "file"], "Field required", "missing", None),
                    status_code=422,
                )
            purpose = form.fields.get("purpose", "fine-tune")
            if purpose not in PURPOSES:
                return JSONResponse(
                    _detail_error(
                        ["body", "purpose"],
                        "Input should be " + ", ".join(repr(p) for p in PURPOSES),
                        "enum",
                        purpose[:100],
                    ),
                    status_code=422,
                )
            filename = form.filename or "upload"
            existing = state.find_duplicate(filename, form.sha256)
            if existing is not None:
                return JSONResponse(existing)
            if purpose == "fine-tune":
                checked = await run_in_threadpool(_validate_fine_tune, tmp, state.max_size)
                if checked is not None and checked[1]:
                    errors, count = checked
                    return JSONResponse(
                        {
                            "detail": "Invalid file format.",
                            "description": f"Found {count} errors in this file. You can view "
                            "supported formats here: "
                            "https://docs.mistral.ai/capabilities/finetuning. ",
                            "errors": errors,
                        },
                        status_code=422,
                    )
            sample_type = await run_in_threadpool(_detect_sample_type, tmp, purpose)
            created = int(state.now())
            expiry = form.fields.get("expiry", "")
            obj = {
                "id": str(uuid.uuid4()),
                "object": "file",
                "bytes": form.size,
                "created_at": created,
                "filename": filename,
                "purpose": purpose,
                "sample_type": sample_type,
                "source": "upload",
                "num_lines": form.lines,
                "mimetype": "application/jsonl"
                if filename.lower().endswith(".jsonl")
                else (form.content_type or "application/octet-stream"),
                # The real API does not say what its signature is; here it is the start of
                # the content's sha256.
                "signature": form.sha256[:16],
                "expires_at": created + int(expiry) * 3600 if expiry.isdigit() else None,
                "visibility": form.fields.get("visibility", "workspace"),
            }
            return JSONResponse(state.add_file(tmp, obj, form.sha256))
        finally:
            tmp.unlink(missing_ok=True)

    def too_large() -> Response:
        return JSONResponse(
            {
                "detail": "Request Entity Too Large",
                "message": f"The file is larger than the limit of {state.max_size} bytes.",
            },
            status_code=413,
        )

    def bad_int(where: str, name: str, raw: str) -> Response:
        return JSONResponse(
            _detail_error(
                [where, name],
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
                raw[:100],
            ),
            status_code=422,
        )

    async def list_files(request: Request) -> Response:
        q = request.query_params
        values: dict[str, int] = {}
        for name, default, low, high in (("page", 0, 0, 10**9), ("page_size", 100, 1, 10**4)):
            raw = q.get(name, str(default))
            try:
                values[name] = int(raw)
            except ValueError:
                return bad_int("query", name, raw)
            if not (low <= values[name] <= high):
                return JSONResponse(
                    _detail_error(
                        ["query", name],
                        f"Input should be between {low} and {high}",
                        "range",
                        raw[:100],
                    ),
                    status_code=422,
                )
        page, page_size = values["page"], values["page_size"]
        include_total = q.get("include_total", "true").lower() not in ("false", "0", "no")
        purpose = q.get("purpose")
        sample_types = set(q.getlist("sample_type"))
        sources = set(q.getlist("source"))
        mimetypes = set(q.getlist("mimetypes"))
        search = (q.get("search") or "").lower()
        matching = [
            f
            for f in state.files()
            if (purpose is None or f["purpose"] == purpose)
            and (not sample_types or f["sample_type"] in sample_types)
            and (not sources or f["source"] in sources)
            and (not mimetypes or f["mimetype"] in mimetypes)
            and (not search or search in f["filename"].lower())
        ]
        data = matching[page * page_size : (page + 1) * page_size]
        total = len(matching) if include_total else None
        return JSONResponse({"data": data, "object": "list", "total": total})

    async def retrieve(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if (problem := check_id(file_id)) is not None:
            return problem
        return JSONResponse({**(state.get(file_id) or {}), "deleted": False})

    async def delete(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if (problem := check_id(file_id)) is not None:
            return problem
        deleted = state.delete(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": deleted})

    async def content(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if (problem := check_id(file_id)) is not None:
            return problem
        return FileResponse(state.content_path(file_id), media_type="application/octet-stream")

    async def signed_url(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if (problem := check_id(file_id)) is not None:
            return problem
        raw = request.query_params.get("expiry", "24")
        try:
            hours = int(raw)
        except ValueError:
            return bad_int("query", "expiry", raw)
        if not (1 <= hours <= 168):
            return JSONResponse(
                _detail_error(
                    ["query", "expiry"], "Input should be between 1 and 168", "range", raw
                ),
                status_code=422,
            )
        expires = int(state.now()) + hours * 3600
        token = state.sign(file_id, expires)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"url": f"{base}/signed/{file_id}?expires={expires}&token={token}"})

    async def signed_content(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        expires = request.query_params.get("expires", "")
        token = request.query_params.get("token", "")
        if not state.signature_valid(file_id, expires, token) or state.get(file_id) is None:
            return JSONResponse(
                {"detail": "Signed URL is invalid or has expired."}, status_code=403
            )
        return FileResponse(state.content_path(file_id), media_type="application/octet-stream")

    async def control_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                payload = await request.json()
                items = payload if isinstance(payload, list) else [payload]
                faults = [Fault.from_dict(item) for item in items]
            except (ValueError, UsageError) as e:
                return JSONResponse({"detail": str(e)}, status_code=422)
            for fault in faults:
                state.add_fault(fault)
            return JSONResponse({"faults": [asdict(f) for f in state.faults()]}, status_code=201)
        if request.method == "DELETE":
            state.clear_faults()
        return JSONResponse({"faults": [asdict(f) for f in state.faults()]})

    async def control_requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_requests()
        return JSONResponse({"requests": [asdict(r) for r in state.requests]})

    async def control_clock(request: Request) -> Response:
        try:
            payload = await request.json()
            seconds = float(payload["advance"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"detail": 'send {"advance": SECONDS}'}, status_code=422)
        state.advance_clock(seconds)
        return JSONResponse({"now": state.now()})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "files": len(state.files())})

    inner = Starlette(
        routes=[
            Route("/v1/files", upload, methods=["POST"]),
            Route("/v1/files", list_files, methods=["GET"]),
            Route("/v1/files/{file_id}", retrieve, methods=["GET"]),
            Route("/v1/files/{file_id}", delete, methods=["DELETE"]),
            Route("/v1/files/{file_id}/content", content, methods=["GET"]),
            Route("/v1/files/{file_id}/url", signed_url, methods=["GET"]),
            Route("/signed/{file_id}", signed_content, methods=["GET"]),
            Route("/_emulator/faults", control_faults, methods=["GET", "POST", "DELETE"]),
            Route("/_emulator/requests", control_requests, methods=["GET", "DELETE"]),
            Route("/_emulator/clock", control_clock, methods=["POST"]),
            Route("/_emulator/health", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    return _FrontDoor(inner, state)


class _FrontDoor:
    """Applies faults, checks the bearer key and logs, before the routes see a request."""

    def __init__(self, app: Callable[..., Any], state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def _answer(
        self,
        send: Callable[[dict[str, Any]], Any],
        status: int,
        body: Any,
        headers: list[tuple[bytes, bytes]] = [],  # noqa: B006 (never mutated)
    ) -> None:
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if path.startswith("/_emulator/"):
            if not _is_loopback(scope.get("client")):
                await _drain(receive)
                await self._answer(send, 403, {"detail": "control endpoints are loopback-only"})
                return
            await self.app(scope, receive, send)
            return
        seen: list[int] = []

        async def tracking_send(message: dict[str, Any]) -> None:
            # Logged before the answer leaves, so a client that has its answer also
            # finds the request in the log.
            if message["type"] == "http.response.start" and not seen:
                seen.append(message["status"])
                self.state.record(RequestRecord(method, path, message["status"]))
            await send(message)

        fault = self.state.take_fault(method, path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            await _drain(receive)
            headers = []
            if fault.retry_after is not None:
                headers.append((b"retry-after", fault.retry_after.encode("latin-1", "replace")))
            body = fault.body if fault.body is not None else {"detail": "Injected fault"}
            await self._answer(tracking_send, fault.status, body, headers)
            return
        if path.startswith("/v1/") and not self._authorized(scope):
            await _drain(receive)
            await self._answer(tracking_send, 401, {"detail": "Unauthorized"})
            return
        if fault is not None and fault.drop:
            await self._handle_then_drop(scope, receive, method, path)
            return
        try:
            await self.app(scope, receive, tracking_send)
        finally:
            if not seen:
                self.state.record(RequestRecord(method, path, None))

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and self.state.key_accepted(token.strip())
        return False

    async def _handle_then_drop(
        self, scope: dict[str, Any], receive: Any, method: str, path: str
    ) -> None:
        handled: list[int] = []

        async def swallow(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                handled.append(message["status"])

        await self.app(scope, receive, swallow)
        client = scope.get("client") or ("", 0)
        transport = _CONNECTIONS.get((str(client[0]), int(client[1])))
        self.state.record(RequestRecord(method, path, handled[0] if handled else None, True))
        if transport is None:
            raise RuntimeError("drop fault: this server does not expose its connections")
        transport.close()
        # Let the server notice the closed connection before this request returns, so
        # it does not try to answer on it.
        for _ in range(3):
            await asyncio.sleep(0)


# --------------------------------------------------------------------------- serving


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot resolve --host {host!r}: {e}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(False)
    return sock


def _url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _server(state: EmulatorState, *, log_level: str, access_log: bool) -> uvicorn.Server:
    import uvicorn

    config = uvicorn.Config(
        create_app(state),
        http=_protocol_class(),
        ws="none",
        lifespan="off",
        loop="asyncio",
        interface="asgi3",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return uvicorn.Server(config)


class Emulator:
    """A running emulator: where it listens and how to steer it.

    ``base_url`` is the URL to give a client; ``state`` is the
    :class:`EmulatorState`, whose fault and inspection methods are also offered here.
    """

    def __init__(self, state: EmulatorState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    @property
    def data_dir(self) -> Path:
        return self.state.data_dir

    def fail_next(self, status: int, **kwargs: Any) -> None:
        """See :meth:`EmulatorState.fail_next`."""
        self.state.fail_next(status, **kwargs)

    def delay_next(self, seconds: float, **kwargs: Any) -> None:
        """See :meth:`EmulatorState.delay_next`."""
        self.state.delay_next(seconds, **kwargs)

    def drop_next(self, **kwargs: Any) -> None:
        """See :meth:`EmulatorState.drop_next`."""
        self.state.drop_next(**kwargs)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def advance_clock(self, seconds: float) -> None:
        self.state.advance_clock(seconds)

    @property
    def requests(self) -> list[RequestRecord]:
        return self.state.requests

    def files(self) -> list[dict[str, Any]]:
        return self.state.files()

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r}, data_dir={str(self.data_dir)!r})"


@contextlib.contextmanager
def running(
    data_dir: str | os.PathLike[str],
    api_key: str | None = None,
    max_size: int | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[Emulator]:
    """Run an emulator in a background thread for the duration of a ``with`` block.

    Listens on ``host`` (loopback by default) and an ephemeral ``port``; any bearer key
    is accepted unless ``api_key`` is given. The server is stopped on exit.

    >>> with running(tmp_path) as emu:                          # doctest: +SKIP
    ...     emu.base_url
    'http://127.0.0.1:41234'
    """
    _require_extra()
    state = EmulatorState(data_dir, api_key=api_key, max_size=max_size)
    sock = _bind(host, port)
    base_url = _url_of(sock)
    server = _server(state, log_level="warning", access_log=False)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as e:  # reported to the caller below, not lost in the thread
            failure.append(e)

    thread = threading.Thread(target=run, name="ftprep-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        if not server.started:
            raise RuntimeError(
                f"the emulator did not start: {failure[0] if failure else 'timeout'}"
            )
        yield Emulator(state, base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def serve(
    data_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_size: int | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then stop cleanly and return.

    ``on_ready`` gets the base URL once the socket listens (``port=0`` picks a free one).
    """
    _require_extra()
    import signal

    state = EmulatorState(data_dir, api_key=api_key, max_size=max_size)
    sock = _bind(host, port)
    server = _server(state, log_level=log_level, access_log=log_level in ("info", "debug"))
    stops: list[int] = []
    # uvicorn catches the signals while it serves and re-raises them afterwards, to the
    # handlers that were in place: these only note the stop, so it ends as a clean return.
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stops.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if on_ready is not None:
            on_ready(_url_of(sock))
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
