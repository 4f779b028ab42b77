"""A small client for Mistral's Files API over httpx: upload, list, retrieve, delete,
download and signed URLs, with retries that are safe for large uploads.

>>> from ftprep import FilesClient                          # doctest: +SKIP
>>> with FilesClient() as client:                          # doctest: +SKIP
...     f = client.upload("train.jsonl")
...     print(f.id, f.bytes)

The key comes from ``api_key=`` or ``MISTRAL_API_KEY``; it is held in a wrapper whose
repr is redacted and is put on the request only when the request is sent. Plain
``http://`` is accepted only for loopback hosts, and redirects are never followed, so the
key cannot be carried to another host.
"""

from __future__ import annotations

import builtins
import email.utils
import ipaddress
import json
import logging
import math
import os
import random
import re
import tempfile
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO, Any, TypeAlias
from urllib.parse import quote

import httpx

from . import __version__
from .errors import (
    APIError,
    AuthenticationError,
    InputError,
    InsecureURLError,
    LineError,
    NotFoundError,
    OutputError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ServerValidationError,
    TransportError,
    UsageError,
)
from .problems import clip
from .progress import ProgressCallback

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AmbiguousUpload",
    "FileObject",
    "FilesClient",
    "RetryPolicy",
    "check_base_url",
    "parse_retry_after",
]

DEFAULT_BASE_URL = "https://api.mistral.ai"
ENV_API_KEY = "MISTRAL_API_KEY"
ENV_BASE_URL = "FTPREP_BASE_URL"
#: Connecting should be quick; sending or reading 500 MB (and the server's check of
#: it) can take minutes, as the official SDK also allows.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
DEFAULT_USER_AGENT = f"ftprep/{__version__}"
#: Statuses worth another try: the server may well answer differently next time.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses after which an upload may have been stored although it failed.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
#: Longest server message kept on an error; servers can send whole HTML pages.
MAX_SERVER_MESSAGE = 500

QueryValue: TypeAlias = str | Iterable[str] | None
_Params: TypeAlias = list[tuple[str, str | int | float | bool | None]]


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up, per client or per call.

    ``max_attempts`` counts the first try (1 = never retry). The n-th retry waits
    ``min(initial_backoff * 2**(n-1), max_backoff)`` seconds, shortened by up to
    ``jitter`` (a fraction) at random so that many clients do not retry in step. A
    ``Retry-After`` from the server replaces the backoff when it is at most
    ``max_retry_after`` seconds; a longer one fails the call at once.

    >>> RetryPolicy(jitter=0).backoff(3)
    2.0
    >>> RetryPolicy.never().max_attempts
    1
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not (0 <= self.initial_backoff <= self.max_backoff):
            raise UsageError("backoff must satisfy 0 <= initial_backoff <= max_backoff")
        if self.max_retry_after < 0:
            raise UsageError("max_retry_after must not be negative")
        if not (0 <= self.jitter <= 1):
            raise UsageError(f"jitter must be between 0 and 1, got {self.jitter}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def backoff(self, retry_number: int, rand: float = 0.0) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based); ``rand`` in [0, 1)."""
        exponent = min(max(retry_number - 1, 0), 60)
        base = min(self.initial_backoff * 2.0**exponent, self.max_backoff)
        return base * (1.0 - self.jitter * rand)


DEFAULT_RETRY = RetryPolicy()

_SECONDS_RE = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, or ``None`` if it is unusable.

    Accepts delta-seconds and HTTP-dates (``now`` is the current UNIX time). Malformed
    values (empty, negative, ``inf``, dates that cannot be read) give ``None`` so the
    caller falls back to its own backoff; a date in the past gives ``0.0``.

    >>> parse_retry_after("20", now=0)
    20.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=0)
    60.0
    >>> parse_retry_after("-10", now=0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS_RE.fullmatch(text):
        return float(text)  # may be huge (or inf for 400 digits): the caller caps it
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        delta = when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None
    return max(delta, 0.0) if math.isfinite(delta) else None


def describe_wait(seconds: float) -> str:
    """Say a wait in units a person reads at a glance.

    >>> describe_wait(86400)
    '24.0 h'
    >>> describe_wait(1e30)
    'more than a century'
    """
    if not math.isfinite(seconds) or seconds > 100 * 365 * 86400:
        return "more than a century"
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


# --------------------------------------------------------------------------- the key


class _Secret:
    """The API key; its repr, str and pickle never show the value."""

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key cannot be pickled")


_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s'\",)\]]+")


class _RedactingFilter(logging.Filter):
    """Strips bearer tokens and live keys from records of the HTTP loggers.

    httpx and httpcore do not log headers today, but a debug handler or a future
    version might: this keeps the key out of every log all the same.
    """

    def __init__(self) -> None:
        super().__init__("ftprep-redact")
        self.secrets: weakref.WeakSet[_Secret] = weakref.WeakSet()

    def redact(self, text: str) -> str:
        text = _BEARER_RE.sub(r"\1[redacted]", text)
        for secret in list(self.secrets):
            value = secret.reveal()
            if value:
                text = text.replace(value, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logger's problem, not ours
            return True
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_REDACTOR = _RedactingFilter()
# A filter on a logger sees only records logged at that very logger, not its children,
# so every logger httpx and httpcore write to is named here.
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "ftprep",
    "ftprep.client",
)
for _name in _HTTP_LOGGERS:
    _logger = logging.getLogger(_name)
    if _REDACTOR not in _logger.filters:
        _logger.addFilter(_REDACTOR)


class _BearerAuth(httpx.Auth):
    """Puts the key on each request as it is sent, and nowhere else."""

    def __init__(self, secret: _Secret) -> None:
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer " + self._secret.reveal()
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth redacted>"


def _load_key(explicit: str | None) -> _Secret | None:
    raw = explicit if explicit is not None else os.environ.get(ENV_API_KEY)
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    # A key with spaces or control characters cannot go in a header, and httpx's own
    # error would quote the header value: refuse it here without showing it.
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in value):
        raise AuthenticationError(
            f"the API key (from api_key= or {ENV_API_KEY}) contains spaces or characters "
            "that cannot go in an HTTP header; copy the key again from the console"
        )
    secret = _Secret(value)
    _REDACTOR.secrets.add(secret)
    return secret


# --------------------------------------------------------------------------- base URL


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # 0x7f000001, 127.1, localhost.evil.example: names, not loopback


def check_base_url(url: str) -> str:
    """Return ``url`` normalised, or raise if the key would be unsafe there.

    ``https://`` is accepted for any host; ``http://`` only for ``localhost`` and
    loopback IP literals (``127.0.0.0/8``, ``::1``). The host is parsed, never matched
    as a prefix, and userinfo (``user@host``) is refused outright.

    >>> check_base_url("http://127.0.0.1:8000/")
    'http://127.0.0.1:8000'
    >>> check_base_url("http://localhost@evil.example/")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ftprep.errors.InsecureURLError: base URL must not contain a user name or password
    """
    shown = clip(url, 200)
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as e:
        raise UsageError(f"invalid base URL {shown!r}: {e}") from None
    if parsed.userinfo:
        raise InsecureURLError(
            "base URL must not contain a user name or password (user@host): "
            f"{parsed.scheme}://…@{parsed.host}; the key is sent in a header"
        )
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(
            f"invalid base URL {shown!r}: use https://host[:port], e.g. {DEFAULT_BASE_URL}"
        )
    if parsed.query or parsed.fragment:
        raise UsageError(f"invalid base URL {shown!r}: it must not have a query or fragment")
    if parsed.scheme == "http" and not _is_loopback_host(parsed.host):
        raise InsecureURLError(
            f"refusing plain http:// to {parsed.host}: the API key would travel in clear "
            "text. Use https://, or http:// only to localhost, 127.0.0.1 or [::1]"
        )
    return str(parsed).rstrip("/")


# --------------------------------------------------------------------------- file objects


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FileObject:
    """A file as the Files API describes it.

    Parsed leniently: ``bytes`` may be ``None`` (the API's own examples send null),
    ``purpose``, ``sample_type`` and ``source`` are open strings, unknown fields are
    ignored and ``deleted`` is only known from retrieve.

    >>> f = FileObject.from_json({"id": "f1", "bytes": None, "filename": "a.jsonl",
    ...                           "purpose": "fine-tune", "new_field": 1})
    >>> (f.id, f.bytes, f.purpose)
    ('f1', None, 'fine-tune')
    """

    id: str
    filename: str = ""
    bytes: int | None = None
    created_at: int | None = None
    purpose: str | None = None
    sample_type: str | None = None
    source: str | None = None
    num_lines: int | None = None
    mimetype: str | None = None
    signature: str | None = None
    expires_at: int | None = None
    visibility: str | None = None
    deleted: bool | None = None
    object: str = "file"

    @classmethod
    def from_json(cls, data: Any) -> FileObject:
        """Build from a decoded JSON object; raise :class:`APIError` if it has no id."""
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
            raise APIError(
                "the server's answer is not a file object (no 'id'); is the base URL the Files API?"
            )
        deleted = data.get("deleted")
        return cls(
            id=data["id"],
            filename=_opt_str(data.get("filename")) or "",
            bytes=_opt_int(data.get("bytes")),
            created_at=_opt_int(data.get("created_at")),
            purpose=_opt_str(data.get("purpose")),
            sample_type=_opt_str(data.get("sample_type")),
            source=_opt_str(data.get("source")),
            num_lines=_opt_int(data.get("num_lines")),
            mimetype=_opt_str(data.get("mimetype")),
            signature=_opt_str(data.get("signature")),
            expires_at=_opt_int(data.get("expires_at")),
            visibility=_opt_str(data.get("visibility")),
            deleted=deleted if isinstance(deleted, bool) else None,
            object=_opt_str(data.get("object")) or "file",
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire shape (field names as the API spells them)."""
        return {
            "id": self.id,
            "object": self.object,
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "sample_type": self.sample_type,
            "source": self.source,
            "num_lines": self.num_lines,
            "mimetype": self.mimetype,
            "signature": self.signature,
            "expires_at": self.expires_at,
            "visibility": self.visibility,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class AmbiguousUpload:
    """An upload attempt whose outcome is unknown: the server may have stored the file.

    Given to ``upload(..., on_ambiguous_failure=hook)``. ``started_at`` is the UNIX time
    just before the first attempt, so a hook can list the server's files with this
    ``filename`` and ``bytes`` created since then.
    """

    path: str
    filename: str
    bytes: int
    purpose: str
    attempt: int
    started_at: float
    error: APIError


AmbiguousHook = Callable[[AmbiguousUpload], FileObject | None]


# --------------------------------------------------------------------------- errors


def _server_details(response: httpx.Response) -> tuple[str | None, tuple[LineError, ...]]:
    """The server's own words from an error body, and any per-line errors."""
    try:
        text = response.text
    except Exception:
        return None, ()
    try:
        data = json.loads(text)
    except ValueError:
        flat = " ".join(text.split())
        return (clip(flat, MAX_SERVER_MESSAGE) if flat else None), ()
    if not isinstance(data, dict):
        return clip(json.dumps(data), MAX_SERVER_MESSAGE), ()
    parts: builtins.list[str] = []
    detail = data.get("detail")
    if isinstance(detail, str):
        parts.append(detail)
    elif isinstance(detail, builtins.list):
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc") or [] if x != "body")
                msg = str(item.get("msg", ""))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
    for key in ("message", "description"):
        if isinstance(data.get(key), str):
            parts.append(data[key].strip())
    error = data.get("error")
    if isinstance(error, str):
        parts.append(error)
    elif isinstance(error, dict) and isinstance(error.get("message"), str):
        parts.append(error["message"])
    line_errors: builtins.list[LineError] = []
    raw_errors = data.get("errors")
    if isinstance(raw_errors, builtins.list):
        for item in raw_errors:
            if isinstance(item, dict):
                line_errors.append(
                    LineError(
                        line_number=_opt_int(item.get("line_number")),
                        message=clip(str(item.get("message", "")), MAX_SERVER_MESSAGE),
                    )
                )
    message = " ".join(p for p in parts if p) or None
    return (clip(message, MAX_SERVER_MESSAGE) if message else None), tuple(line_errors)


def _status_text(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


# --------------------------------------------------------------------------- the client


class _CountingReader:
    """A file wrapper that reports bytes as httpx reads them for the multipart body.

    httpx declares the part's length from the file's size when it opens it; the reader
    never gives more or fewer bytes than that, so a file that grows or shrinks while
    it is sent is an :class:`InputError` instead of a protocol failure mid-request.
    """

    def __init__(self, fh: IO[bytes], progress: ProgressCallback | None, path: str) -> None:
        self._fh = fh
        self._progress = progress
        self._path = path
        self._size = os.fstat(fh.fileno()).st_size
        self._position = 0
        self.sent = 0

    def _changed(self) -> InputError:
        return InputError(
            f"{self._path}: changed while it was being uploaded (it had {self._size} bytes); "
            "upload it again once it is complete",
            path=self._path,
        )

    def read(self, size: int = -1) -> bytes:
        remaining = self._size - self._position
        if remaining <= 0:
            if self._fh.read(1):
                raise self._changed()
            return b""
        wanted = remaining if size < 0 else min(size, remaining)
        chunk = self._fh.read(wanted)
        if len(chunk) < wanted:
            raise self._changed()
        self._position += len(chunk)
        self.sent += len(chunk)
        if self._progress is not None:
            self._progress(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._fh.seek(offset, whence)
        self._position = position
        if position == 0 and self.sent and self._progress is not None:
            self._progress(-self.sent)  # the body starts over: so does the bar
            self.sent = 0
        return position

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()


class FilesClient:
    """Mistral's Files API: ``upload``, ``list``, ``retrieve``, ``delete``, ``download``,
    ``signed_url``. Use it as a context manager (or call :meth:`close`).

    ``api_key`` defaults to ``MISTRAL_API_KEY``; ``base_url`` to ``FTPREP_BASE_URL``, then
    ``https://api.mistral.ai``. ``retry`` applies to every call unless a call passes its
    own. ``sleep`` and ``clock`` are the waiting and the wall clock used between
    retries (tests pass fakes). ``transport`` replaces the network (e.g.
    ``httpx.MockTransport``).

    >>> with FilesClient(base_url="http://127.0.0.1:8000") as c:   # doctest: +SKIP
    ...     print([f.filename for f in c.list(purpose="fine-tune")])
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = _load_key(api_key)
        # The plain-string key must not outlive this line in the frame: tracebacks that
        # capture locals (pytest --showlocals, Sentry) would print it.
        del api_key
        chosen = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        self.base_url = check_base_url(chosen)
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        host = httpx.URL(self.base_url).host
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            auth=_BearerAuth(self._secret) if self._secret is not None else None,
            # Proxy variables must not divert loopback traffic (the emulator) elsewhere.
            trust_env=not _is_loopback_host(host),
        )

    def __repr__(self) -> str:
        key = "set" if self._secret is not None else "missing"
        return f"FilesClient(base_url={self.base_url!r}, api_key=<{key}>)"

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections."""
        self._http.close()

    # ----------------------------------------------------------------- operations

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        purpose: str = "fine-tune",
        filename: str | None = None,
        progress: ProgressCallback | None = None,
        retry: RetryPolicy | None = None,
        on_ambiguous_failure: AmbiguousHook | None = None,
    ) -> FileObject:
        """Upload one file (``POST /v1/files``), streamed from disk; return its object.

        Each attempt re-opens the file and sends all of it. ``progress`` gets bytes
        sent (negative when a retry starts the body over). After a failure that may
        have stored the file anyway (500, 502, 504, read timeout, lost response),
        ``on_ambiguous_failure`` is called first: return a :class:`FileObject` to adopt
        it instead of retrying, or ``None`` to go on. Without a hook such a retry can
        leave a duplicate on the server; pass ``retry=RetryPolicy.never()`` to avoid that.

        >>> client.upload("train.jsonl", purpose="fine-tune").id   # doctest: +SKIP
        'e85980c9-409e-4a46-9304-36588f6292b0'
        """
        source = Path(path)
        try:
            size = source.stat().st_size
        except OSError as e:
            raise InputError(
                f"{source}: cannot read: {e.strerror or e}", path=str(source)
            ) from None
        if not source.is_file():
            raise InputError(f"{source}: not a regular file", path=str(source))
        name = filename if filename is not None else source.name
        what = f"upload of {name}"
        started_at = self._clock()
        opened: builtins.list[IO[bytes]] = []
        counter: builtins.list[_CountingReader] = []

        def build(attempt: int) -> httpx.Request:
            for fh in opened:
                fh.close()
            opened.clear()
            if counter and progress is not None and counter[0].sent:
                progress(-counter[0].sent)
            counter.clear()
            try:
                fh = source.open("rb")
            except OSError as e:
                raise InputError(
                    f"{source}: cannot read: {e.strerror or e}", path=str(source)
                ) from None
            opened.append(fh)
            reader = _CountingReader(fh, progress, str(source))
            counter.append(reader)
            return self._http.build_request(
                "POST",
                "/v1/files",
                data={"purpose": purpose},
                files={"file": (name, reader, "application/jsonl")},  # type: ignore[dict-item]
            )

        adopted: builtins.list[FileObject] = []

        def ambiguous(error: APIError, attempt: int) -> bool:
            if on_ambiguous_failure is None:
                return False
            found = on_ambiguous_failure(
                AmbiguousUpload(
                    path=str(source),
                    filename=name,
                    bytes=size,
                    purpose=purpose,
                    attempt=attempt,
                    started_at=started_at,
                    error=error,
                )
            )
            if found is None:
                return False
            adopted.append(found)
            return True

        try:
            response = self._send(
                build,
                what=what,
                retry=retry,
                on_ambiguous=ambiguous,
                upload=(str(source), name, size),
            )
        finally:
            for fh in opened:
                fh.close()
        if response is None:
            return adopted[0]
        return FileObject.from_json(self._json(response, what))

    def list(
        self,
        *,
        purpose: str | None = None,
        sample_type: QueryValue = None,
        source: QueryValue = None,
        search: str | None = None,
        page_size: int = 100,
        retry: RetryPolicy | None = None,
    ) -> Iterator[FileObject]:
        """Every file that matches, page by page (``GET /v1/files``), lazily.

        Stops at a short page or once ``total`` files were seen.

        >>> [f.id for f in client.list(purpose="fine-tune", search="train")]  # doctest: +SKIP
        ['e85980c9-409e-4a46-9304-36588f6292b0']
        """
        if page_size < 1:
            raise UsageError(f"page_size must be at least 1, got {page_size}")
        params: _Params = [
            ("page_size", page_size),
            ("include_total", "true"),
        ]
        if purpose is not None:
            params.append(("purpose", purpose))
        for key, value in (("sample_type", sample_type), ("source", source)):
            if isinstance(value, str):
                params.append((key, value))
            elif value is not None:
                params.extend((key, v) for v in value)
        if search is not None:
            params.append(("search", search))
        return self._pages(params, page_size, retry)

    def _pages(
        self,
        params: _Params,
        page_size: int,
        retry: RetryPolicy | None,
    ) -> Iterator[FileObject]:
        page = 0
        seen: set[str] = set()
        while True:
            query = [("page", page), *params]

            def build(attempt: int, query: _Params = query) -> httpx.Request:
                return self._http.build_request("GET", "/v1/files", params=query)

            response = self._must(self._send(build, what="list files", retry=retry))
            body = self._json(response, "list files")
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, builtins.list):
                raise APIError("list files: the server's answer has no 'data' list")
            new = 0
            for item in data:
                f = FileObject.from_json(item)
                if f.id in seen:
                    continue
                seen.add(f.id)
                new += 1
                yield f
            total = _opt_int(body.get("total"))
            # A server that ignores `page` would repeat itself forever: stop on a page
            # that brings nothing new.
            if len(data) < page_size or new == 0 or (total is not None and len(seen) >= total):
                return
            page += 1

    def retrieve(self, file_id: str, *, retry: RetryPolicy | None = None) -> FileObject:
        """One file's object (``GET /v1/files/{id}``), with ``deleted`` set.

        >>> client.retrieve("e85980c9-409e-4a46-9304-36588f6292b0").num_lines  # doctest: +SKIP
        2
        """
        url = self._file_url(file_id)
        what = f"retrieve file {file_id}"
        response = self._must(
            self._send(lambda _: self._http.build_request("GET", url), what=what, retry=retry)
        )
        return FileObject.from_json(self._json(response, what))

    def delete(self, file_id: str, *, retry: RetryPolicy | None = None) -> bool:
        """Delete a file (``DELETE /v1/files/{id}``); return the server's ``deleted``.

        >>> client.delete("e85980c9-409e-4a46-9304-36588f6292b0")  # doctest: +SKIP
        True
        """
        url = self._file_url(file_id)
        what = f"delete file {file_id}"
        response = self._must(
            self._send(lambda _: self._http.build_request("DELETE", url), what=what, retry=retry)
        )
        body = self._json(response, what)
        return bool(body.get("deleted")) if isinstance(body, dict) else False

    def download(
        self,
        file_id: str,
        dest_path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        retry: RetryPolicy | None = None,
    ) -> int:
        """Save a file's content (``GET /v1/files/{id}/content``) to ``dest_path``.

        The bytes go to a temporary file beside ``dest_path`` that is renamed over it
        only when complete, so ``dest_path`` is never half-written. Returns the bytes
        written.

        >>> client.download("e85980c9-409e-4a46-9304-36588f6292b0", "copy.jsonl")  # doctest: +SKIP
        1234
        """
        dest = Path(dest_path)
        parent = dest.parent
        if not parent.is_dir():
            raise OutputError(f"{dest}: the directory {parent} does not exist")
        url = self._file_url(file_id) + "/content"
        what = f"download file {file_id}"
        try:
            fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{dest.name}.", suffix=".part")
        except OSError as e:
            raise OutputError(f"{dest}: cannot write in {parent}: {e.strerror or e}") from None
        tmp = Path(tmp_name)
        written = 0
        try:
            with os.fdopen(fd, "wb") as fh:

                def consume(response: httpx.Response) -> None:
                    nonlocal written
                    if written:
                        if progress is not None:
                            progress(-written)
                        fh.seek(0)
                        fh.truncate()
                        written = 0
                    for chunk in response.iter_bytes(1 << 16):
                        fh.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))

                def build(_: int) -> httpx.Request:
                    return self._http.build_request(
                        "GET", url, headers={"Accept": "application/octet-stream"}
                    )

                self._send(build, what=what, retry=retry, consume=consume)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"{dest}: cannot write: {e.strerror or e}") from e
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return written

    def signed_url(
        self, file_id: str, *, expiry_hours: int = 24, retry: RetryPolicy | None = None
    ) -> str:
        """A URL that serves the file's content without the key, for ``expiry_hours``.

        >>> client.signed_url(file_id, expiry_hours=1)  # doctest: +SKIP
        'https://...'
        """
        if not (1 <= expiry_hours <= 168):
            raise UsageError(f"expiry_hours must be between 1 and 168, got {expiry_hours}")
        url = self._file_url(file_id) + "/url"
        what = f"signed URL of file {file_id}"
        response = self._must(
            self._send(
                lambda _: self._http.build_request("GET", url, params={"expiry": expiry_hours}),
                what=what,
                retry=retry,
            )
        )
        body = self._json(response, what)
        signed = body.get("url") if isinstance(body, dict) else None
        if not isinstance(signed, str) or not signed:
            raise APIError(f"{what}: the server's answer has no 'url'")
        return signed

    # ----------------------------------------------------------------- machinery

    @staticmethod
    def _file_url(file_id: str) -> str:
        if not file_id or not isinstance(file_id, str):
            raise UsageError("a file id is required")
        return "/v1/files/" + quote(file_id, safe="")

    @staticmethod
    def _must(response: httpx.Response | None) -> httpx.Response:
        if response is None:  # pragma: no cover (only uploads can stop early)
            raise APIError("no response")
        return response

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise APIError(
                f"{what}: the server answered {_status_text(response)} with a body that is "
                f"not JSON ({clip(kind, 60)}); is the base URL the Files API?",
                status=response.status_code,
            ) from None

    def _send(
        self,
        build: Callable[[int], httpx.Request],
        *,
        what: str,
        retry: RetryPolicy | None,
        consume: Callable[[httpx.Response], None] | None = None,
        on_ambiguous: Callable[[APIError, int], bool] | None = None,
        upload: tuple[str, str, int] | None = None,
    ) -> httpx.Response | None:
        """Send with retries. Returns the (read, closed) response of the first success,
        or ``None`` when ``on_ambiguous`` adopted an existing file instead."""
        if self._secret is None:
            raise AuthenticationError(
                f"no API key: set {ENV_API_KEY} (or pass api_key=) before calling the Files API"
            )
        policy = retry if retry is not None else self.retry
        attempt = 0
        while True:
            attempt += 1
            request = build(attempt)
            retry_after: float | None = None
            asked = ""
            try:
                response = self._http.send(request, stream=True)
                try:
                    if response.status_code < 300 and consume is not None:
                        consume(response)
                    else:
                        response.read()
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                error, retryable, ambiguous = self._transport_failure(exc, what)
                if not retryable:
                    raise error from exc
                cause: BaseException = exc
            else:
                if response.status_code < 300:
                    return response
                error = self._status_failure(response, what, attempt, upload)
                cause = error
                status = response.status_code
                if status not in RETRY_STATUSES:
                    raise error
                ambiguous = status in AMBIGUOUS_STATUSES
                asked = response.headers.get("retry-after", "")
                retry_after = parse_retry_after(asked or None, self._clock())
            if ambiguous and on_ambiguous is not None and on_ambiguous(error, attempt):
                return None
            if retry_after is not None and retry_after > policy.max_retry_after:
                error.args = (
                    f"{error.args[0]}; the server asked to wait {describe_wait(retry_after)} "
                    f"(Retry-After: {clip(asked, 40)}), longer than the "
                    f"{describe_wait(policy.max_retry_after)} ftprep waits: try again later",
                )
                raise error from (None if cause is error else cause)
            if attempt >= policy.max_attempts:
                if policy.max_attempts > 1:
                    error.args = (f"{error.args[0]} (gave up after {attempt} attempts)",)
                raise error from (None if cause is error else cause)
            if retry_after is not None and retry_after > 0:
                delay = retry_after
            else:
                delay = policy.backoff(attempt, random.random())
            _log.info("%s: attempt %d failed (%s); retrying in %.2f s", what, attempt, error, delay)
            self._sleep(delay)

    def _transport_failure(self, exc: httpx.HTTPError, what: str) -> tuple[APIError, bool, bool]:
        """Wrap an httpx exception; say whether it is worth a retry, and whether the
        server may have acted on the request anyway."""
        detail = _REDACTOR.redact(clip(str(exc) or type(exc).__name__, 200))
        host = self.base_url
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return TransportError(f"{what}: timed out connecting to {host}: {detail}"), True, False
        if isinstance(exc, httpx.ConnectError):
            return TransportError(f"{what}: cannot connect to {host}: {detail}"), True, False
        if isinstance(exc, httpx.TimeoutException):
            return (
                TransportError(f"{what}: {host} did not answer in time ({type(exc).__name__})"),
                True,
                True,
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.NetworkError):
            return (
                TransportError(f"{what}: connection to {host} lost before an answer: {detail}"),
                True,
                True,
            )
        return TransportError(f"{what}: {type(exc).__name__}: {detail}"), False, False

    def _status_failure(
        self,
        response: httpx.Response,
        what: str,
        attempt: int,
        upload: tuple[str, str, int] | None,
    ) -> APIError:
        status = response.status_code
        server_message, line_errors = _server_details(response)
        if server_message is not None:
            server_message = _REDACTOR.redact(server_message)
        said = f": {server_message}" if server_message else ""
        head = f"{what} failed ({_status_text(response)})"
        if 300 <= status < 400:
            location = clip(response.headers.get("location", "nowhere"), 200)
            return APIError(
                f"{head}: the server redirects to {location}; ftprep does not follow "
                "redirects (the key must not go to another host). Check the base URL",
                status=status,
                server_message=server_message,
            )
        if status in (401, 403):
            return AuthenticationError(
                f"{head}{said}. Check {ENV_API_KEY}: the key is missing, wrong, revoked, "
                "or lacks access to the Files API",
                status=status,
                server_message=server_message,
            )
        if status == 404:
            return NotFoundError(f"{head}{said}", status=status, server_message=server_message)
        if status == 413:
            path, name, size = upload if upload is not None else ("PATH", "the file", 0)
            size_text = f" ({size:,} bytes)" if size else ""
            return PayloadTooLargeError(
                f"{head}: {name}{size_text} is over the server's size limit. "
                f"Shard it with `ftprep split {path} --max-size 500MB` and upload the parts",
                status=status,
                server_message=server_message,
            )
        if status == 422:
            shown = "; ".join(
                f"line {e.line_number}: {e.message}" if e.line_number is not None else e.message
                for e in line_errors[:3]
            )
            more = f" (+{len(line_errors) - 3} more)" if len(line_errors) > 3 else ""
            lines = f" — {shown}{more}" if shown else ""
            return ServerValidationError(
                f"{head}{said}{lines}",
                status=status,
                server_message=server_message,
                line_errors=line_errors,
            )
        if status == 429:
            return RateLimitError(
                f"{head}: rate limited{said}", status=status, server_message=server_message
            )
        if status >= 500:
            return ServerError(f"{head}{said}", status=status, server_message=server_message)
        return APIError(f"{head}{said}", status=status, server_message=server_message)


_log = logging.getLogger("ftprep.client")
