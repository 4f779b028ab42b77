"""The ledger: which content went to which server, under which file ID.

An entry is keyed by *content* (sha256 + size) plus ``purpose`` and the API base URL,
never by path or mtime, so a renamed file is still known and an edited one is not.
It keeps the file ID, the filename sent, the size, when it was recorded, and a state:
``pending`` (written, and fsynced, before the upload starts) or ``uploaded``. A
``pending`` entry found later means a run died somewhere around its POST; the next run
looks the file up on the server before sending it again.

Storage is one small JSON document replaced atomically (temp file in the same
directory, fsync, ``os.replace``, fsync of the directory). It was chosen over SQLite
because a ledger holds hundreds of entries, not millions: a whole-document rewrite
costs microseconds, the file stays readable with ``cat``, every way it can break
(truncated, empty, garbage, a newer version) is detected by one parse, and there are
no ``-wal``/``-shm`` side files that a copy or a network filesystem could tear apart.
SQLite's own concurrency would not have been enough anyway: the lock must span the
network round trip, not just one write.

Writers hold an exclusive ``flock`` on ``<ledger>.lock`` (opened with ``O_NOFOLLOW``)
for a whole session, so two runs on the same ledger take turns instead of both
uploading the same shard. Readers need no lock: they see the old or the new
document, never a mix.

A ledger that cannot be parsed is copied aside to ``<ledger>.corrupt-<timestamp>``,
replaced by an empty one marked *to be rebuilt*, and the next upload session refills
it from the server listing (files whose names carry ftprep's content token). It is
never taken as "nothing was uploaded". The ledger holds no API key and nothing derived
from one.

>>> ledger = Ledger(".ftprep/ledger")                      # doctest: +SKIP
>>> ledger.file_ids("train.jsonl")                         # doctest: +SKIP
['5a1f0c8e-…', '9b3d2e71-…']
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from .errors import LedgerError

__all__ = [
    "DEFAULT_LEDGER_PATH",
    "Ledger",
    "LedgerEntry",
    "LedgerSession",
    "SourceRecord",
    "ensure_state_dir",
    "file_sha256",
    "split_upload_name",
    "upload_name",
]

log = logging.getLogger("ftprep.ledger")

DEFAULT_LEDGER_PATH = Path(".ftprep") / "ledger"
FORMAT = "ftprep-ledger"
VERSION = 1
#: Hex digits of the sha256 carried in an uploaded file's name. With the size also
#: compared, 48 bits make an accidental match between two real files negligible.
TOKEN_LEN = 12

EntryState = Literal["pending", "uploaded"]
_STATES = ("pending", "uploaded")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_NAME = re.compile(
    rf"^(?P<stem>.+)\.(?P<token>[0-9a-f]{{{TOKEN_LEN}}})(?P<suffix>\.[A-Za-z0-9]{{1,16}})?$"
)
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by ftprep.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class LedgerEntry:
    """One uploaded (or about to be uploaded) content on one server.

    ``sha256`` is ``None`` only for entries rebuilt from a server listing: the server
    knows the name (which carries the first 12 hex digits) and the size, not the full
    hash. Such an entry gets its full hash back the first time a local file matches it.
    """

    sha256: str | None
    bytes: int
    purpose: str
    base_url: str
    filename: str
    file_id: str | None
    state: EntryState
    recorded_at: str
    path: str | None = None
    rebuilt: bool = False

    @property
    def token(self) -> str:
        """The content token in the filename sent (first hex digits of the sha256)."""
        if self.sha256 is not None:
            return self.sha256[:TOKEN_LEN]
        parsed = split_upload_name(self.filename)
        return parsed[1] if parsed else ""

    def matches(self, sha256: str, size: int, purpose: str, base_url: str) -> bool:
        if (self.bytes, self.purpose, self.base_url) != (size, purpose, base_url):
            return False
        if self.sha256 is not None:
            return self.sha256 == sha256
        return self.token == sha256[:TOKEN_LEN]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "bytes": self.bytes,
            "purpose": self.purpose,
            "base_url": self.base_url,
            "filename": self.filename,
            "file_id": self.file_id,
            "state": self.state,
            "recorded_at": self.recorded_at,
            "path": self.path,
            "rebuilt": self.rebuilt,
        }

    @classmethod
    def from_dict(cls, d: Any) -> LedgerEntry:
        if not isinstance(d, dict):
            raise ValueError("entry is not an object")
        sha = d.get("sha256")
        if sha is not None and not (isinstance(sha, str) and _HEX64.match(sha)):
            raise ValueError("entry sha256 is not 64 hex digits")
        size = d.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("entry bytes is not a size")
        state = d.get("state")
        if state not in _STATES:
            raise ValueError(f"entry state {state!r} is unknown")
        file_id = d.get("file_id")
        if file_id is not None and not (isinstance(file_id, str) and file_id):
            raise ValueError("entry file_id is not a string")
        if state == "uploaded" and file_id is None:
            raise ValueError("uploaded entry has no file_id")
        strings: dict[str, str] = {}
        for k in ("purpose", "base_url", "filename", "recorded_at"):
            v = d.get(k)
            if not isinstance(v, str):
                raise ValueError(f"entry {k} is not a string")
            strings[k] = v
        path = d.get("path")
        if path is not None and not isinstance(path, str):
            raise ValueError("entry path is not a string")
        rebuilt = d.get("rebuilt", False)
        if not isinstance(rebuilt, bool) or (sha is None and not rebuilt):
            raise ValueError("entry without sha256 must be a rebuilt one")
        return cls(
            sha256=sha,
            bytes=size,
            purpose=strings["purpose"],
            base_url=strings["base_url"],
            filename=strings["filename"],
            file_id=file_id,
            state=state,
            recorded_at=strings["recorded_at"],
            path=path,
            rebuilt=rebuilt,
        )


@dataclass(frozen=True)
class SourceRecord:
    """A local file that was sharded before upload: its content and its shards' hashes."""

    sha256: str
    bytes: int
    path: str
    max_size: int
    shards: tuple[str, ...]
    recorded_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "bytes": self.bytes,
            "path": self.path,
            "max_size": self.max_size,
            "shards": list(self.shards),
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def from_dict(cls, d: Any) -> SourceRecord:
        if not isinstance(d, dict):
            raise ValueError("source is not an object")
        sha, size, max_size = d.get("sha256"), d.get("bytes"), d.get("max_size")
        shards, path, at = d.get("shards"), d.get("path"), d.get("recorded_at")
        if not (isinstance(sha, str) and _HEX64.match(sha)):
            raise ValueError("source sha256 is not 64 hex digits")
        if not isinstance(size, int) or not isinstance(max_size, int):
            raise ValueError("source sizes are not integers")
        if not isinstance(shards, list) or not all(
            isinstance(s, str) and _HEX64.match(s) for s in shards
        ):
            raise ValueError("source shards are not sha256 digests")
        if not isinstance(path, str) or not isinstance(at, str):
            raise ValueError("source path or time is not a string")
        return cls(sha, size, path, max_size, tuple(shards), at)


class ServerFile(Protocol):
    """What the ledger needs from a file in the server's listing."""

    @property
    def id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def bytes(self) -> int | None: ...


@dataclass
class _Document:
    entries: list[LedgerEntry]
    sources: list[SourceRecord]
    #: None: never corrupt. Otherwise when the ledger was found unreadable, and which
    #: (purpose, base URL) pairs have since been refilled from a server listing.
    rebuild_since: str | None = None
    rebuilt_for: list[tuple[str, str]] | None = None

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "entries": [e.to_dict() for e in self.entries],
            "sources": [s.to_dict() for s in self.sources],
        }
        if self.rebuild_since is not None:
            doc["rebuild"] = {
                "since": self.rebuild_since,
                "done": [list(p) for p in self.rebuilt_for or []],
            }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> _Document:
        """Parse a ledger; raise ``ValueError`` naming what is wrong with it."""
        if not data.strip():
            raise ValueError("it is empty")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"it is not valid JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("it is not an ftprep ledger")
        if doc.get("version") != VERSION:
            raise ValueError(f"its version {doc.get('version')!r} is not {VERSION}")
        entries, sources = doc.get("entries"), doc.get("sources", [])
        if not isinstance(entries, list) or not isinstance(sources, list):
            raise ValueError("its entries or sources are not lists")
        result = cls(
            entries=[LedgerEntry.from_dict(e) for e in entries],
            sources=[SourceRecord.from_dict(s) for s in sources],
        )
        rebuild = doc.get("rebuild")
        if rebuild is not None:
            done = rebuild.get("done") if isinstance(rebuild, dict) else None
            since = rebuild.get("since") if isinstance(rebuild, dict) else None
            if not isinstance(since, str) or not isinstance(done, list):
                raise ValueError("its rebuild marker is malformed")
            pairs: list[tuple[str, str]] = []
            for p in done:
                if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)):
                    raise ValueError("its rebuild marker is malformed")
                pairs.append((p[0], p[1]))
            result.rebuild_since, result.rebuilt_for = since, pairs
        return result


# --------------------------------------------------------------------------- helpers


def upload_name(name: str, sha256: str) -> str:
    """The filename sent for a file: its own name with a content token before the suffix.

    The token makes the name stable for one content and different for any other, so
    a listing can tell "my upload of exactly these bytes" apart from everything else,
    and the server's same-name-and-content rule makes a repeated POST harmless.

    >>> upload_name("train.part-0001-of-0004.jsonl", "3f2a9c1b7d4e" + "0" * 52)
    'train.part-0001-of-0004.3f2a9c1b7d4e.jsonl'
    """
    base = Path(name).name
    stem, dot, suffix = base.rpartition(".")
    token = sha256[:TOKEN_LEN]
    if not dot or not stem:
        return f"{base}.{token}"
    return f"{stem}.{token}.{suffix}"


def split_upload_name(filename: str) -> tuple[str, str] | None:
    """``(original name, token)`` for a name made by :func:`upload_name`, else ``None``.

    >>> split_upload_name("train.3f2a9c1b7d4e.jsonl")
    ('train.jsonl', '3f2a9c1b7d4e')
    """
    m = _UPLOAD_NAME.match(filename)
    if m is None:
        return None
    return m.group("stem") + (m.group("suffix") or ""), m.group("token")


def file_sha256(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> tuple[str, int]:
    """``(sha256 hex digest, size)`` of a file, read in chunks.

    >>> file_sha256("train.jsonl")                        # doctest: +SKIP
    ('3f2a9c1b…', 1234)
    """
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def ensure_state_dir(directory: str | os.PathLike[str]) -> Path:
    """Create an ftprep state directory that git and backup tools leave alone.

    A directory ftprep creates (or one called ``.ftprep``) gets a ``.gitignore``
    holding ``*`` and a ``CACHEDIR.TAG``, so its ledger and shards cannot be committed
    by accident. A directory the user already had, under another name, is left as it is.

    >>> ensure_state_dir(".ftprep")                        # doctest: +SKIP
    PosixPath('.ftprep')
    """
    d = Path(directory)
    created = False
    if not d.is_dir():
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LedgerError(f"cannot create state directory {d}: {e.strerror or e}") from e
        created = True
    if created or d.name == ".ftprep":
        for name, text in ((".gitignore", "*\n"), ("CACHEDIR.TAG", _CACHEDIR_TAG)):
            _write_marker(d / name, text.encode())
    return d


def _write_marker(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        return  # already there (or a link someone put there: left alone)
    except OSError as e:
        raise LedgerError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        os.write(fd, data)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _find(
    entries: Iterable[LedgerEntry], sha256: str, size: int, purpose: str, base_url: str
) -> LedgerEntry | None:
    exact = rebuilt = None
    for e in entries:
        if e.matches(sha256, size, purpose, base_url):
            if e.sha256 is not None:
                exact = e
            elif rebuilt is None:
                rebuilt = e
    return exact or rebuilt


_PART = re.compile(r"^(?P<stem>.+)\.part-(?P<n>\d{4,})-of-(?P<of>\d{4,})(?P<suffix>\.[^.]+)?$")


def _from_names(
    path: Path, sha: str, size: int, uploaded: list[LedgerEntry]
) -> list[tuple[str, list[str]]]:
    """IDs for a file the ledger knows only by its uploads' names (after a rebuild).

    The file itself may carry the token; else a complete set of its shards
    (``{stem}.part-0001-of-0004…``) whose sizes add up to the file's can be checked
    byte range by byte range, since shards concatenate to the original.
    """
    from .splitter import safe_stem  # shards are named after it

    stem = safe_stem(path)
    found: list[tuple[str, list[str]]] = []
    for e in uploaded:
        if e.sha256 is None and e.bytes == size and e.token == sha[:TOKEN_LEN] and e.file_id:
            found.append((e.recorded_at, [e.file_id]))
    groups: dict[tuple[str, str, int], dict[int, list[LedgerEntry]]] = {}
    for e in uploaded:
        parsed = split_upload_name(e.filename)
        m = _PART.match(parsed[0]) if parsed else None
        if m is None or m.group("stem") != stem or e.file_id is None:
            continue
        group = groups.setdefault((e.purpose, e.base_url, int(m.group("of"))), {})
        group.setdefault(int(m.group("n")), []).append(e)
    for (_, _, total), parts in groups.items():
        if sorted(parts) != list(range(1, total + 1)):
            continue
        ordered = _walk(path, [parts[n] for n in range(1, total + 1)], size)
        if ordered is not None:
            ids = [e.file_id for e in ordered if e.file_id is not None]
            found.append((max(e.recorded_at for e in ordered), ids))
    return found


def _walk(path: Path, candidates: list[list[LedgerEntry]], size: int) -> list[LedgerEntry] | None:
    """Pick, part by part, an upload whose bytes are the file's next bytes."""
    chosen: list[LedgerEntry] = []
    try:
        with open(path, "rb") as fh:
            offset = 0
            for options in candidates:
                pick = next((e for e in options if _range_is(fh, offset, e)), None)
                if pick is None:
                    return None
                chosen.append(pick)
                offset += pick.bytes
    except OSError:
        return None
    return chosen if offset == size else None


def _range_is(fh: Any, offset: int, e: LedgerEntry) -> bool:
    fh.seek(offset)
    h = hashlib.sha256()
    left = e.bytes
    while left:
        block = fh.read(min(left, 1 << 20))
        if not block:
            return False
        h.update(block)
        left -= len(block)
    digest: str = h.hexdigest()
    return digest == e.sha256 if e.sha256 is not None else digest[:TOKEN_LEN] == e.token


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes, *, hook: bool = True) -> None:
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if hook:
            checkpoint("ledger-replace")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _refuse_symlink(path: Path, what: str) -> None:
    if path.is_symlink():
        raise LedgerError(
            f"{what} {path} is a symbolic link; ftprep does not follow links for its state. "
            "Remove the link (or pass --ledger with a real path) and rerun."
        )


# ------------------------------------------------------------------ test checkpoints

_hits: dict[str, int] = {}
_hits_lock = threading.Lock()


def checkpoint(point: str) -> None:
    """A named point in the upload path where crash tests stop the process.

    Inert unless ``FTPREP_TEST_KILL_AT`` or ``FTPREP_TEST_PAUSE_AT`` names this point;
    only the test suite sets them. ``FTPREP_TEST_KILL_AT=point`` (or ``point#N`` for the
    N-th time it is reached) sends SIGKILL to this process: nothing gets to clean up,
    exactly like a power cut. ``FTPREP_TEST_PAUSE_AT=point`` creates
    ``$FTPREP_TEST_PAUSE_DIR/<point>.<pid>`` and waits until that file is removed.
    """
    kill_at = os.environ.get("FTPREP_TEST_KILL_AT")
    pause_at = os.environ.get("FTPREP_TEST_PAUSE_AT")
    if not kill_at and not pause_at:
        return
    with _hits_lock:
        _hits[point] = n = _hits.get(point, 0) + 1
    if kill_at:
        name, _, nth = kill_at.partition("#")
        if name == point and n == int(nth or "1"):
            os.kill(os.getpid(), signal.SIGKILL)
    if pause_at == point and (pause_dir := os.environ.get("FTPREP_TEST_PAUSE_DIR")):
        flag = Path(pause_dir) / f"{point}.{os.getpid()}"
        flag.touch()
        while flag.exists():
            time.sleep(0.01)


# --------------------------------------------------------------------------- ledger


class Ledger:
    """The record of uploads, at ``path`` (default ``.ftprep/ledger``).

    Reading (:meth:`entries`, :meth:`file_ids`) needs no lock. Writing happens inside
    :meth:`session`, which holds the ledger's lock until it ends.

    >>> ledger = Ledger()                                   # doctest: +SKIP
    >>> [e.file_id for e in ledger.entries() if e.state == "uploaded"]  # doctest: +SKIP
    ['5a1f0c8e-…']
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_LEDGER_PATH,
        *,
        lock_timeout: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # -- reading

    def _read_bytes(self) -> bytes | None:
        _refuse_symlink(self.path, "ledger")
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                _refuse_symlink(self.path, "ledger")
            raise LedgerError(f"cannot read ledger {self.path}: {e.strerror or e}") from e
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise LedgerError(f"ledger {self.path} is not a regular file")
            return fh.read()

    def _load(self) -> _Document:
        data = self._read_bytes()
        if data is None:
            return _Document(entries=[], sources=[])
        try:
            return _Document.parse(data)
        except ValueError as e:
            raise LedgerError(
                f"ledger {self.path} is unreadable: {e}. The next `ftprep upload` or "
                "`ftprep push` moves it aside and rebuilds it from the server's listing."
            ) from None

    def entries(self) -> list[LedgerEntry]:
        """Every entry, oldest first.

        >>> for e in Ledger().entries():                    # doctest: +SKIP
        ...     print(e.state, e.file_id, e.filename)
        uploaded 5a1f0c8e-… train.3f2a9c1b7d4e.jsonl
        """
        return list(self._load().entries)

    def find(self, sha256: str, size: int, *, purpose: str, base_url: str) -> LedgerEntry | None:
        """The entry for this content on this server, if any (read-only, no lock).

        >>> Ledger().find(sha, size, purpose="fine-tune", base_url="https://api.mistral.ai")
        ... # doctest: +SKIP
        LedgerEntry(sha256='3f2a…', state='uploaded', file_id='5a1f0c8e-…', …)
        """
        return _find(self._load().entries, sha256, size, purpose, base_url.rstrip("/"))

    def sources(self) -> list[SourceRecord]:
        """Every sharded local file recorded by ``push``, oldest first."""
        return list(self._load().sources)

    def file_ids(
        self,
        path: str | os.PathLike[str],
        *,
        purpose: str | None = None,
        base_url: str | None = None,
    ) -> list[str]:
        """The file IDs recorded for a local file, in order; ``[]`` if none.

        The file is known by its content: if it was uploaded whole, that one ID; if
        ``push`` sharded it, its shards' IDs in shard order. When the content went to
        several servers (or purposes) and none is named, the most recent upload wins.

        >>> Ledger().file_ids("train.jsonl")                # doctest: +SKIP
        ['5a1f0c8e-…', '9b3d2e71-…']
        """
        doc = self._load()
        try:
            sha, size = file_sha256(path)
        except OSError as e:
            raise LedgerError(f"cannot read {path}: {e.strerror or e}") from e
        uploaded = [
            e
            for e in doc.entries
            if e.state == "uploaded"
            and (purpose is None or e.purpose == purpose)
            and (base_url is None or e.base_url == base_url.rstrip("/"))
        ]
        # (recorded_at, ids) per way this content was uploaded; the newest one wins.
        candidates: list[tuple[str, list[str]]] = []
        for entry in uploaded:
            if entry.sha256 == sha and entry.bytes == size and entry.file_id is not None:
                candidates.append((entry.recorded_at, [entry.file_id]))
        for src in doc.sources:
            if src.sha256 != sha or src.bytes != size:
                continue
            by_server: dict[tuple[str, str], dict[str, LedgerEntry]] = {}
            for entry in uploaded:
                if entry.sha256 is not None and entry.sha256 in src.shards:
                    server = (entry.purpose, entry.base_url)
                    by_server.setdefault(server, {})[entry.sha256] = entry
            for found in by_server.values():
                if all(s in found for s in src.shards):
                    shard_entries = [found[s] for s in src.shards]
                    newest = max(src.recorded_at, *(x.recorded_at for x in shard_entries))
                    ids = [x.file_id for x in shard_entries if x.file_id is not None]
                    candidates.append((newest, ids))
        if not candidates:
            candidates = _from_names(Path(path), sha, size, uploaded)
        if not candidates:
            return []
        return max(candidates, key=lambda c: c[0])[1]

    # -- writing

    @contextlib.contextmanager
    def session(self) -> Iterator[LedgerSession]:
        """Hold the ledger's exclusive lock and offer read-modify-write on it.

        A second session on the same ledger (another process, or another thread)
        waits until this one ends. A corrupt ledger is moved aside here, with a warning.

        >>> with Ledger().session() as s:                  # doctest: +SKIP
        ...     s.find(sha, size, purpose="fine-tune", base_url=url)
        """
        _refuse_symlink(self.path, "ledger")
        _refuse_symlink(self.lock_path, "ledger lock")
        ensure_state_dir(self.path.parent)
        fd = self._acquire_lock()
        try:
            checkpoint("lock-acquired")
            self._remove_stale_temps()
            session = LedgerSession(self, self._load_for_write())
            yield session
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _acquire_lock(self) -> int:
        try:
            fd = os.open(
                self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError as e:
            if e.errno == errno.ELOOP:
                _refuse_symlink(self.lock_path, "ledger lock")
            raise LedgerError(f"cannot open lock {self.lock_path}: {e.strerror or e}") from e
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LedgerError(f"ledger lock {self.lock_path} is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                log.warning(
                    "waiting for another ftprep run%s that is using ledger %s",
                    f" (pid {holder})" if holder.isdigit() else "",
                    self.path,
                )
                self._wait_for_lock(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _wait_for_lock(self, fd: int) -> None:
        if self.lock_timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        f"ledger {self.path} is in use by another ftprep run; "
                        "wait for it to finish and rerun"
                    ) from None
                time.sleep(0.05)

    def _remove_stale_temps(self) -> None:
        # Under the lock, a temp file can only be left over from a run that was killed.
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _load_for_write(self) -> _Document:
        data = self._read_bytes()
        if data is None:
            return _Document(entries=[], sources=[])
        try:
            return _Document.parse(data)
        except ValueError as e:
            reason = str(e)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists() or aside.is_symlink():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        # Copy first, then replace: a crash in between leaves the corrupt ledger where
        # it was (and the next run does this again), never no ledger at all.
        _atomic_write(aside, data, hook=False)
        doc = _Document(entries=[], sources=[], rebuild_since=_now(), rebuilt_for=[])
        _atomic_write(self.path, doc.to_bytes())
        log.warning(
            "ledger %s was unreadable (%s); moved it to %s and rebuilding it from the "
            "server's listing",
            self.path,
            reason,
            aside,
        )
        return doc


class LedgerSession:
    """Read-modify-write access to a ledger while its lock is held.

    Every change is on disk (fsynced, atomically replaced) before the method returns.
    Methods are safe to call from several threads.
    """

    def __init__(self, ledger: Ledger, doc: _Document) -> None:
        self.ledger = ledger
        self._doc = doc
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.ledger.path

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._doc.entries)

    def needs_rebuild(self, *, purpose: str, base_url: str) -> bool:
        """True if the ledger was found corrupt and this server's files were not reloaded."""
        with self._lock:
            doc = self._doc
            return doc.rebuild_since is not None and (purpose, base_url) not in (
                doc.rebuilt_for or []
            )

    def rebuild_from(self, files: Iterable[ServerFile], *, purpose: str, base_url: str) -> int:
        """Refill the ledger from a server listing; return how many files were taken in.

        Only names made by :func:`upload_name` are taken: their token and size are
        what a later lookup matches a local file against.
        """
        taken: list[LedgerEntry] = []
        for f in files:
            if split_upload_name(f.filename) is None or f.bytes is None:
                continue
            taken.append(
                LedgerEntry(
                    sha256=None,
                    bytes=f.bytes,
                    purpose=purpose,
                    base_url=base_url,
                    filename=f.filename,
                    file_id=f.id,
                    state="uploaded",
                    recorded_at=_now(),
                    rebuilt=True,
                )
            )
        with self._lock:
            known = {e.file_id for e in self._doc.entries}
            self._doc.entries.extend(e for e in taken if e.file_id not in known)
            done = self._doc.rebuilt_for if self._doc.rebuilt_for is not None else []
            done.append((purpose, base_url))
            self._doc.rebuilt_for = done
            self._write()
        return len(taken)

    def find(self, sha256: str, size: int, *, purpose: str, base_url: str) -> LedgerEntry | None:
        """The entry for this content on this server; an exact one before a rebuilt one."""
        with self._lock:
            return _find(self._doc.entries, sha256, size, purpose, base_url)

    def uploaded(self, sha256: str, *, purpose: str, base_url: str) -> LedgerEntry | None:
        """The uploaded entry with exactly this sha256 on this server, whatever its size."""
        with self._lock:
            for e in reversed(self._doc.entries):
                if (e.sha256, e.purpose, e.base_url, e.state) == (
                    sha256,
                    purpose,
                    base_url,
                    "uploaded",
                ):
                    return e
            return None

    def mark_pending(
        self,
        sha256: str,
        size: int,
        *,
        purpose: str,
        base_url: str,
        filename: str,
        path: str | None,
    ) -> LedgerEntry:
        """Record, durably, that this content is about to be sent under ``filename``."""
        return self._mark(sha256, size, purpose, base_url, filename, None, "pending", path)

    def mark_uploaded(
        self,
        sha256: str,
        size: int,
        *,
        purpose: str,
        base_url: str,
        filename: str,
        file_id: str,
        path: str | None,
    ) -> LedgerEntry:
        """Record, durably, that this content is on the server as ``file_id``."""
        return self._mark(sha256, size, purpose, base_url, filename, file_id, "uploaded", path)

    def _mark(
        self,
        sha256: str,
        size: int,
        purpose: str,
        base_url: str,
        filename: str,
        file_id: str | None,
        state: EntryState,
        path: str | None,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            sha256=sha256,
            bytes=size,
            purpose=purpose,
            base_url=base_url,
            filename=filename,
            file_id=file_id,
            state=state,
            recorded_at=_now(),
            path=path,
        )
        self._put(entry)
        return entry

    def touch(self, entry: LedgerEntry, *, sha256: str, path: str | None) -> LedgerEntry:
        """Fill in what a reused entry lacked (the full hash of a rebuilt one, the path)."""
        if entry.sha256 == sha256 and entry.path == path:
            return entry
        updated = replace(entry, sha256=sha256, path=path, rebuilt=False)
        with self._lock:
            self._doc.entries = [updated if e is entry else e for e in self._doc.entries]
            self._write()
        return updated

    def forget(self, sha256: str, size: int, *, purpose: str, base_url: str) -> None:
        """Drop this content's entries on this server (its file is gone, or never came)."""
        with self._lock:
            self._doc.entries = [
                e for e in self._doc.entries if not e.matches(sha256, size, purpose, base_url)
            ]
            self._write()

    def source(self, sha256: str, size: int, *, max_size: int) -> SourceRecord | None:
        """How this content was sharded at this size limit, if ``push`` recorded it."""
        with self._lock:
            for s in self._doc.sources:
                if (s.sha256, s.bytes, s.max_size) == (sha256, size, max_size):
                    return s
            return None

    def record_source(
        self, sha256: str, size: int, *, path: str, max_size: int, shards: Iterable[str]
    ) -> SourceRecord:
        """Record that a local file was sharded into these shards (by their sha256)."""
        record = SourceRecord(sha256, size, path, max_size, tuple(shards), _now())
        with self._lock:
            self._doc.sources = [
                s
                for s in self._doc.sources
                if (s.sha256, s.bytes, s.max_size) != (sha256, size, max_size)
            ]
            self._doc.sources.append(record)
            self._write()
        return record

    def _put(self, entry: LedgerEntry) -> None:
        assert entry.sha256 is not None
        with self._lock:
            self._doc.entries = [
                e
                for e in self._doc.entries
                if not e.matches(entry.sha256, entry.bytes, entry.purpose, entry.base_url)
            ]
            self._doc.entries.append(entry)
            self._write()

    def _write(self) -> None:
        try:
            _atomic_write(self.ledger.path, self._doc.to_bytes())
        except OSError as e:
            raise LedgerError(f"cannot write ledger {self.ledger.path}: {e.strerror or e}") from e
        checkpoint("ledger-written")
