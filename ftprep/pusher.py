"""Upload files and record their IDs; ``push`` validates and shards them first.

:func:`upload` sends files as they are. :func:`push` validates every file, shards
what is over the size limit, then uploads like :func:`upload`. Both return a
:class:`PushResult` whose ``training_files`` is ready for a fine-tuning job.

Every file goes through the same steps, under the ledger's lock:

1. hash it (sha256 + size) and look the content up in the ledger;
2. recorded as uploaded: ``retrieve`` the ID. Still there: ``reused``. Gone (404):
   upload again. 401/403: stop, with the ledger as it was;
3. recorded as ``pending`` (a run died around its POST): list the server's files
   with that name and size and adopt a match before sending anything;
4. otherwise write a ``pending`` entry (fsynced), POST under a name that carries the
   content token (``train.part-0001-of-0004.3f2a9c1b7d4e.jsonl``), record the ID.
   When an attempt fails in a way that may have stored the file anyway (500, 502,
   504, timeout, lost response), the same listing is checked before any re-POST.

So a rerun after any crash or kill uploads nothing twice, and records every ID.

>>> result = push(["train.jsonl"], max_size="500MB")        # doctest: +SKIP
>>> result.training_files                                   # doctest: +SKIP
[{'file_id': '5a1f0c8e-…', 'weight': 1}]
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from .client import AmbiguousUpload, FileObject, FilesClient, check_base_url
from .config import Config
from .errors import (
    APIError,
    InputError,
    NotFoundError,
    ServerError,
    TransportError,
    UsageError,
)
from .ledger import (
    DEFAULT_LEDGER_PATH,
    Ledger,
    LedgerEntry,
    LedgerSession,
    checkpoint,
    ensure_state_dir,
    file_sha256,
    upload_name,
)
from .problems import Report
from .progress import ProgressCallback
from .sizes import DEFAULT_MAX_SIZE, parse_size

__all__ = ["DEFAULT_SHARDS_DIR", "FileProgress", "PushResult", "Upload", "push", "upload"]

log = logging.getLogger("ftprep.pusher")

DEFAULT_SHARDS_DIR = Path(".ftprep") / "shards"

#: ``uploaded``/``reused`` after a real run; a dry run says ``new`` (would be sent)
#: or ``recorded`` (the ledger has it; not checked against the server).
Status = Literal["uploaded", "reused", "new", "recorded"]


@dataclass(frozen=True)
class Upload:
    """One file sent (or found already sent): what, where from, and its file ID."""

    path: str
    sha256: str
    bytes: int
    file_id: str | None
    status: Status
    filename: str
    #: The local file this one is a shard of; ``None`` for a file sent whole.
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "file_id": self.file_id,
            "status": self.status,
            "filename": self.filename,
        }
        if self.source is not None:
            d["source"] = self.source
        return d


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` or :func:`upload` did.

    ``refused`` is true when validation found errors and nothing was uploaded (the
    problems are in ``report``). ``base_url`` is the server as the ledger names it.

    >>> r = PushResult(uploads=[Upload("a.jsonl", "0" * 64, 3, "f1", "uploaded", "a.jsonl")],
    ...                base_url="https://api.mistral.ai", purpose="fine-tune")
    >>> r.training_files
    [{'file_id': 'f1', 'weight': 1}]
    """

    uploads: list[Upload]
    base_url: str
    purpose: str
    report: Report | None = None
    refused: bool = False
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def file_ids(self) -> list[str]:
        """Each distinct file ID, in input (and shard) order."""
        seen: dict[str, None] = {}
        for u in self.uploads:
            if u.file_id is not None:
                seen.setdefault(u.file_id, None)
        return list(seen)

    @property
    def training_files(self) -> list[dict[str, Any]]:
        """``[{"file_id": ..., "weight": 1}, ...]`` for a fine-tuning job's ``training_files``."""
        return [{"file_id": fid, "weight": 1} for fid in self.file_ids]

    def to_dict(self, *, training_files: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"uploads": [u.to_dict() for u in self.uploads]}
        if training_files:
            d["training_files"] = self.training_files
        d["base_url"] = self.base_url
        d["purpose"] = self.purpose
        d["dry_run"] = self.dry_run
        if self.report is not None:
            d["ok"] = self.report.ok
            d["files"] = [f.to_dict() for f in self.report.files]
        return d


class FileProgress(Protocol):
    """Per-file progress: ``start(path, size)`` gives the callback for one file's bytes
    sent; ``finish(path)`` says that file is done (sent, or failed)."""

    def start(self, name: str, total: int) -> ProgressCallback | None: ...

    def finish(self, name: str) -> None: ...


# --------------------------------------------------------------------------- internals


_Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> _Stamp:
    """What changes when a file is written: size, mtime, inode and device."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", path=str(path)) from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}", path=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{path}: not a regular file (a directory, FIFO or device); pass .jsonl files",
            path=str(path),
        )
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _stamp_or_none(path: Path) -> _Stamp | None:
    try:
        return _stamp(path)
    except InputError:
        return None


def _hash(path: Path) -> tuple[str, int]:
    try:
        return file_sha256(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}", path=str(path)) from None


@dataclass(frozen=True)
class _Item:
    path: Path
    shown: str
    sha256: str
    bytes: int
    filename: str
    stamp: _Stamp
    source: str | None = None
    #: Set when the ledger and the server already have this shard: nothing to send.
    reused_id: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.sha256, self.bytes)


def _item(path: Path, *, stamp: _Stamp | None = None, source: str | None = None) -> _Item:
    before = _stamp(path) if stamp is None else stamp
    sha, size = _hash(path)
    return _Item(
        path=path,
        shown=str(path),
        sha256=sha,
        bytes=size,
        filename=upload_name(path.name, sha),
        stamp=before,
        source=source,
    )


class _Cancelled(Exception):
    """Raised inside an upload's body stream to stop it (Ctrl-C, or another failed)."""


def _ambiguous(error: APIError) -> bool:
    """May the server have stored the file although this error came back?"""
    if isinstance(error, ServerError | TransportError):
        return True
    # A 2xx whose body is not a file object: a proxy may have answered, or not.
    return type(error) is APIError and (error.status is None or error.status < 300)


class _Uploader:
    """Sends items through one client, recording each step in one ledger session."""

    def __init__(
        self,
        client: FilesClient,
        session: LedgerSession,
        *,
        purpose: str,
        base_url: str,
        progress: ProgressCallback | None,
        file_progress: FileProgress | None,
    ) -> None:
        self.client = client
        self.session = session
        self.purpose = purpose
        self.base_url = base_url
        self.progress = progress
        self.file_progress = file_progress
        self.cancel = threading.Event()
        self.warnings: list[str] = []
        self._warn_lock = threading.Lock()

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        with self._warn_lock:
            self.warnings.append(message)

    def rebuild_if_needed(self) -> None:
        s = self.session
        if not s.needs_rebuild(purpose=self.purpose, base_url=self.base_url):
            return
        n = s.rebuild_from(
            self.client.list(purpose=self.purpose), purpose=self.purpose, base_url=self.base_url
        )
        self.warn(
            f"ledger {s.path}: took in {n} file(s) named by ftprep from the server's listing "
            f"({self.base_url}, purpose {self.purpose})"
        )

    # -- one item

    def send(self, item: _Item) -> tuple[str, Status]:
        if self.cancel.is_set():
            raise _Cancelled
        if item.reused_id is not None:
            return item.reused_id, "reused"
        entry = self.session.find(
            item.sha256, item.bytes, purpose=self.purpose, base_url=self.base_url
        )
        if entry is not None and entry.state == "uploaded":
            if self._still_there(entry, item):
                assert entry.file_id is not None
                self.session.touch(entry, sha256=item.sha256, path=item.shown)
                return entry.file_id, "reused"
        elif entry is not None:
            # A run died around its POST of this content: the server may have it.
            found = self._find_on_server(entry.filename, item.bytes)
            if found is None and entry.filename != item.filename:
                found = self._find_on_server(item.filename, item.bytes)
            if found is not None:
                self._record(item, found.filename, found.id)
                return found.id, "reused"
        return self._post(item), "uploaded"

    def _still_there(self, entry: LedgerEntry, item: _Item) -> bool:
        assert entry.file_id is not None
        try:
            f = self.client.retrieve(entry.file_id)
        except NotFoundError:
            log.info(
                "%s: file %s is gone from the server; uploading again", item.shown, entry.file_id
            )
            return False
        if f.deleted:
            return False
        if f.bytes is not None and f.bytes != item.bytes:
            self.warn(
                f"{item.shown}: the server's file {entry.file_id} has {f.bytes} bytes, not "
                f"{item.bytes}; uploading again"
            )
            return False
        return True

    def _find_on_server(self, filename: str, size: int) -> FileObject | None:
        # What `search` matches is not documented, so the listing is filtered here too.
        matches = [
            f
            for f in self.client.list(purpose=self.purpose, search=filename)
            if f.filename == filename and (f.bytes is None or f.bytes == size)
        ]
        if not matches:
            return None
        matches.sort(key=lambda f: (f.created_at if f.created_at is not None else 0, f.id))
        if len(matches) > 1:
            others = ", ".join(f.id for f in matches[1:])
            self.warn(
                f"{len(matches)} copies of {filename} are on the server; using the oldest "
                f"({matches[0].id}). Remove the others with `ftprep files delete {others}`"
            )
        return matches[0]

    def _on_ambiguous(self, failed: AmbiguousUpload) -> FileObject | None:
        checkpoint("ambiguous")
        log.warning(
            "upload of %s failed in a way that may have stored it (%s); checking the "
            "server before sending it again",
            failed.filename,
            failed.error,
        )
        return self._find_on_server(failed.filename, failed.bytes)

    def _callback(self, item: _Item) -> ProgressCallback:
        per_file = (
            self.file_progress.start(item.shown, item.bytes)
            if self.file_progress is not None
            else None
        )
        overall = self.progress
        started = False

        def sent(n: int) -> None:
            nonlocal started
            if self.cancel.is_set():
                raise _Cancelled
            if not started:
                started = True
                checkpoint("post-body")
            if overall is not None:
                overall(n)
            if per_file is not None:
                per_file(n)

        return sent

    def _post(self, item: _Item) -> str:
        s = self.session
        checkpoint("before-pending")
        s.mark_pending(
            item.sha256,
            item.bytes,
            purpose=self.purpose,
            base_url=self.base_url,
            filename=item.filename,
            path=item.shown,
        )
        checkpoint("before-post")
        try:
            try:
                f = self.client.upload(
                    item.path,
                    purpose=self.purpose,
                    filename=item.filename,
                    progress=self._callback(item),
                    on_ambiguous_failure=self._on_ambiguous,
                )
            finally:
                if self.file_progress is not None:
                    self.file_progress.finish(item.shown)
        except Exception as e:
            if _stamp_or_none(item.path) != item.stamp:
                # Whatever went wrong, the bytes sent were not the bytes hashed.
                s.forget(item.sha256, item.bytes, purpose=self.purpose, base_url=self.base_url)
                raise _changed(item.path) from e
            if not isinstance(e, APIError):
                raise
            found = self._find_on_server(item.filename, item.bytes) if _ambiguous(e) else None
            if found is None:
                if not _ambiguous(e):
                    # Refused outright (4xx, 429 after retries): nothing was stored.
                    s.forget(item.sha256, item.bytes, purpose=self.purpose, base_url=self.base_url)
                raise
            f = found
        checkpoint("after-post")
        if f.bytes is not None and f.bytes != item.bytes:
            # Left pending: a rerun's listing check skips a file of the wrong size.
            raise APIError(
                f"{item.shown}: the server stored {f.bytes} bytes as {f.id}, but "
                f"{item.bytes} were sent; rerun to upload it again"
            )
        self._check_unchanged(item, f.id)
        self._record(item, item.filename, f.id)
        checkpoint("after-record")
        return f.id

    def _check_unchanged(self, item: _Item, file_id: str) -> None:
        if _stamp_or_none(item.path) == item.stamp:
            return
        # What went out is not what was hashed: that file must not pass for this content.
        with contextlib.suppress(APIError):
            self.client.delete(file_id)
        self.session.forget(item.sha256, item.bytes, purpose=self.purpose, base_url=self.base_url)
        raise _changed(item.path)

    def _record(self, item: _Item, filename: str, file_id: str) -> None:
        self.session.mark_uploaded(
            item.sha256,
            item.bytes,
            purpose=self.purpose,
            base_url=self.base_url,
            filename=filename,
            file_id=file_id,
            path=item.shown,
        )

    def shard(
        self,
        src: Path,
        stamp: _Stamp,
        limit: int,
        shards_dir: Path,
        split: Any,
        *,
        default_dir: bool,
    ) -> list[_Item]:
        """The shards of one source: recorded ones still on the server, else split anew."""
        sha, size = _hash(src)
        known = self.session.source(sha, size, max_size=limit)
        if known is not None and (entries := self._all_still_there(known.shards, src)):
            self._check_source(src, stamp)
            return [
                _Item(
                    path=Path(e.path or e.filename),
                    shown=e.path or e.filename,
                    sha256=sha_,
                    bytes=e.bytes,
                    filename=e.filename,
                    stamp=stamp,
                    source=str(src),
                    reused_id=e.file_id,
                )
                for sha_, e in zip(known.shards, entries, strict=True)
            ]
        if default_dir:
            ensure_state_dir(shards_dir.parent)
        try:
            shards_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create --out-dir {shards_dir}: {e.strerror or e}") from None
        # push hashes every shard itself (below), so the splitter need not.
        result = split(src, max_size=limit, out_dir=shards_dir, force=True, checksums=False)
        for warning in result.warnings:
            self.warn(warning)
        items = _shard_items(result.shards, src)
        self._check_source(src, stamp)
        if size != stamp[0]:
            raise _changed(src)
        self.session.record_source(
            sha, size, path=str(src), max_size=limit, shards=[it.sha256 for it in items]
        )
        return items

    def _all_still_there(self, shas: Sequence[str], src: Path) -> list[LedgerEntry] | None:
        entries: list[LedgerEntry] = []
        for sha in shas:
            e = self.session.uploaded(sha, purpose=self.purpose, base_url=self.base_url)
            if e is None:
                return None
            entries.append(e)
        for e in entries:
            probe = _Item(
                Path(e.path or e.filename),
                str(src),
                e.sha256 or "",
                e.bytes,
                e.filename,
                (0, 0, 0, 0),
            )
            if not self._still_there(e, probe):
                return None
        return entries

    @staticmethod
    def _check_source(src: Path, stamp: _Stamp) -> None:
        if _stamp(src) != stamp:
            raise _changed(src)

    # -- many items

    def run(self, items: Sequence[_Item], jobs: int) -> list[Upload]:
        first: dict[tuple[str, int], _Item] = {}
        for it in items:
            first.setdefault(it.key, it)
        done: dict[tuple[str, int], tuple[str, Status]] = {}
        if jobs <= 1 or len(first) <= 1:
            for key, it in first.items():
                done[key] = self.send(it)
        else:
            done = self._run_parallel(first, jobs)
        uploads: list[Upload] = []
        seen: set[tuple[str, int]] = set()
        for it in items:
            file_id, status = done[it.key]
            if it.key in seen:
                status = "reused"  # the same content, given twice, is sent once
            seen.add(it.key)
            uploads.append(
                Upload(it.shown, it.sha256, it.bytes, file_id, status, it.filename, it.source)
            )
        return uploads

    def _run_parallel(
        self, first: dict[tuple[str, int], _Item], jobs: int
    ) -> dict[tuple[str, int], tuple[str, Status]]:
        done: dict[tuple[str, int], tuple[str, Status]] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="upload")
        futures = {pool.submit(self.send, it): key for key, it in first.items()}
        try:
            for fut in concurrent.futures.as_completed(futures):
                done[futures[fut]] = fut.result()
        except Exception:
            # Start nothing new; uploads already in flight finish and are recorded.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BaseException:
            # Ctrl-C: uploads in flight stop at their next chunk (a rerun checks the
            # server for them before sending them again).
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return done


@contextlib.contextmanager
def _client_for(
    client: FilesClient | None, api_key: str | None, base_url: str | None
) -> Iterator[FilesClient]:
    if client is not None:
        yield client
        return
    with FilesClient(api_key, base_url=base_url) as own:
        yield own


def _ledger_for(ledger: Ledger | str | os.PathLike[str] | None) -> Ledger:
    if isinstance(ledger, Ledger):
        return ledger
    return Ledger(DEFAULT_LEDGER_PATH if ledger is None else ledger)


def _server_name(
    client: FilesClient | None, base_url: str | None, ledger_base_url: str | None
) -> str:
    if ledger_base_url is not None:
        return ledger_base_url.rstrip("/")
    if client is not None:
        return client.base_url
    return check_base_url(base_url or os.environ.get("FTPREP_BASE_URL") or "https://api.mistral.ai")


def _changed(path: Path) -> InputError:
    return InputError(
        f"{path} changed while ftprep was working on it; rerun once it is no longer being written",
        path=str(path),
    )


def _check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")


def _dry_status(ledger: Ledger, item: _Item, purpose: str, base_url: str) -> Upload:
    entry = ledger.find(item.sha256, item.bytes, purpose=purpose, base_url=base_url)
    recorded = entry is not None and entry.state == "uploaded"
    return Upload(
        item.shown,
        item.sha256,
        item.bytes,
        entry.file_id if recorded and entry is not None else None,
        "recorded" if recorded else "new",
        item.filename,
        item.source,
    )


# --------------------------------------------------------------------------- upload


def upload(
    paths: Iterable[str | os.PathLike[str]],
    *,
    purpose: str = "fine-tune",
    client: FilesClient | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    ledger: Ledger | str | os.PathLike[str] | None = None,
    jobs: int = 1,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    file_progress: FileProgress | None = None,
    ledger_base_url: str | None = None,
) -> PushResult:
    """Upload files as they are and record their IDs in the ledger.

    Content already recorded and still on the server is not sent again (status
    ``reused``). ``client`` (else one made from ``api_key``/``base_url``, which default
    to ``MISTRAL_API_KEY``/``FTPREP_BASE_URL``) does the sending; ``jobs`` uploads run at
    once. ``ledger_base_url`` names the server in the ledger when its URL is not a
    stable name for it (the emulator on a random port). ``dry_run`` sends nothing and
    needs no key: it reports what the ledger already has.

    >>> result = upload(["train.jsonl", "valid.jsonl"], jobs=2)   # doctest: +SKIP
    >>> [(u.path, u.status, u.file_id) for u in result.uploads]   # doctest: +SKIP
    [('train.jsonl', 'uploaded', '5a1f…'), ('valid.jsonl', 'reused', '9b3d…')]
    """
    _check_jobs(jobs)
    book = _ledger_for(ledger)
    items = [_item(Path(p)) for p in paths]
    if dry_run:
        server = _server_name(client, base_url, ledger_base_url)
        uploads = [_dry_status(book, it, purpose, server) for it in items]
        return PushResult(uploads, server, purpose, dry_run=True)
    with _client_for(client, api_key, base_url) as c, book.session() as session:
        server = _server_name(c, base_url, ledger_base_url)
        up = _Uploader(
            c,
            session,
            purpose=purpose,
            base_url=server,
            progress=progress,
            file_progress=file_progress,
        )
        up.rebuild_if_needed()
        uploads = up.run(items, jobs)
    return PushResult(uploads, server, purpose, warnings=up.warnings)


# --------------------------------------------------------------------------- push


def push(
    paths: Iterable[str | os.PathLike[str]],
    *,
    schema: str | None = None,
    max_size: int | str = DEFAULT_MAX_SIZE,
    max_errors: int | None = None,
    ignore: Sequence[str] = (),
    select: Sequence[str] = (),
    config: Config | None = None,
    validate_progress: ProgressCallback | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    allow_invalid: bool = False,
    purpose: str = "fine-tune",
    client: FilesClient | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    ledger: Ledger | str | os.PathLike[str] | None = None,
    jobs: int = 1,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    file_progress: FileProgress | None = None,
    ledger_base_url: str | None = None,
) -> PushResult:
    """Validate, shard what is over ``max_size``, upload, record; return the IDs.

    Nothing is uploaded when any file has errors (``refused`` is set and the problems
    are in ``report``) unless ``allow_invalid``. Validation takes ``schema`` (default
    ``auto``), ``max_errors``, ``ignore`` and ``select`` as :func:`ftprep.validate`
    does; with a ``config`` (``ftprep.config.load()``) its per-path schemas (unless
    ``schema`` is given) and per-path ignores apply too, as in ``ftprep validate``.
    ``validate_progress`` gets bytes validated. Shards go to ``out_dir`` (default
    ``.ftprep/shards``) as ``{stem}.part-0001-of-0004.jsonl``; a rerun on the same
    content reuses what the ledger and the server already have, without sharding
    again. The other options are :func:`upload`'s.

    >>> r = push(["data/train.jsonl"], max_size="200MB", jobs=4)   # doctest: +SKIP
    >>> r.training_files                                           # doctest: +SKIP
    [{'file_id': '5a1f…', 'weight': 1}, {'file_id': '9b3d…', 'weight': 1}]
    """
    from .splitter import split
    from .validator import validate

    _check_jobs(jobs)
    limit = parse_size(max_size)
    sources = [Path(p) for p in paths]
    stamps = [_stamp(p) for p in sources]
    _refuse_name_clashes(sources, stamps, limit)
    book = _ledger_for(ledger)

    report = _validate_all(
        validate,
        [str(p) for p in sources],
        schema=schema,
        config=config,
        max_size=_validation_limit(stamps, limit),
        max_errors=max_errors,
        ignore=tuple(ignore),
        select=tuple(select),
        progress=validate_progress,
    )
    if not report.ok and not allow_invalid:
        server = _server_name(client, base_url, ledger_base_url)
        return PushResult([], server, purpose, report=report, refused=True, dry_run=dry_run)

    if dry_run:
        server = _server_name(client, base_url, ledger_base_url)
        planned = _dry_items(book, sources, stamps, limit, split, purpose, server)
        uploads = [_dry_status(book, it, purpose, server) for it in planned]
        return PushResult(uploads, server, purpose, report=report, dry_run=True)

    shards_dir = Path(out_dir) if out_dir is not None else DEFAULT_SHARDS_DIR
    with _client_for(client, api_key, base_url) as c, book.session() as session:
        server = _server_name(c, base_url, ledger_base_url)
        up = _Uploader(
            c,
            session,
            purpose=purpose,
            base_url=server,
            progress=progress,
            file_progress=file_progress,
        )
        up.rebuild_if_needed()
        items: list[_Item] = []
        for src, stamp in zip(sources, stamps, strict=True):
            if stamp[0] <= limit:
                items.append(_item(src, stamp=stamp))
                continue
            items.extend(
                up.shard(src, stamp, limit, shards_dir, split, default_dir=out_dir is None)
            )
        uploads = up.run(items, jobs)
    return PushResult(uploads, server, purpose, report=report, warnings=up.warnings)


def _validate_all(
    validate: Any,
    paths: list[str],
    *,
    schema: str | None,
    config: Config | None,
    ignore: tuple[str, ...],
    **options: Any,
) -> Report:
    # One call per distinct (schema, ignore), as `ftprep validate` groups them; the
    # reports come back in the order of the paths.
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for i, p in enumerate(paths):
        file_schema = schema or "auto"
        file_ignore = ignore
        if config is not None:
            file_schema = schema or config.schema_for(p, config.schema or "auto")
            file_ignore = (*ignore, *config.ignore_for(p))
        groups.setdefault((file_schema, file_ignore), []).append(i)
    files: list[Any] = [None] * len(paths)
    for (file_schema, file_ignore), indexes in groups.items():
        part = validate(
            [paths[i] for i in indexes], schema=file_schema, ignore=file_ignore, **options
        )
        for i, f in zip(indexes, part.files, strict=True):
            files[i] = f
    return Report(files)


def _validation_limit(stamps: Sequence[_Stamp], limit: int) -> int:
    # push shards what is over the limit, so "too big" is not a problem here; a single
    # record over the limit still is, and splitting reports it.
    return max([limit, *(s[0] + 1 for s in stamps)])


def _refuse_name_clashes(sources: Sequence[Path], stamps: Sequence[_Stamp], limit: int) -> None:
    from .splitter import safe_stem

    seen: dict[str, Path] = {}
    for src, stamp in zip(sources, stamps, strict=True):
        if stamp[0] <= limit:
            continue
        other = seen.setdefault(safe_stem(src), src)
        if other != src:
            raise UsageError(
                f"{other} and {src} would be sharded to the same shard names; "
                "push them in separate runs or with different --out-dir"
            )


def _shard_items(result_shards: Iterable[Any], source: Path) -> list[_Item]:
    items: list[_Item] = []
    for shard in result_shards:
        it = _item(Path(shard.path), source=str(source))
        if it.bytes != shard.bytes or shard.sha256 not in (None, it.sha256):
            raise InputError(
                f"{shard.path} does not hold what was just written to it; is another "
                "program writing to the shards directory?",
                path=str(shard.path),
            )
        items.append(it)
    return items


def _dry_items(
    book: Ledger,
    sources: Sequence[Path],
    stamps: Sequence[_Stamp],
    limit: int,
    split: Any,
    purpose: str,
    server: str,
) -> list[_Item]:
    items: list[_Item] = []
    recorded = book.sources()
    for src, stamp in zip(sources, stamps, strict=True):
        if stamp[0] <= limit:
            items.append(_item(src, stamp=stamp))
            continue
        sha, size = _hash(src)
        known = next(
            (r for r in recorded if (r.sha256, r.bytes, r.max_size) == (sha, size, limit)), None
        )
        if known is not None:
            entries = {
                e.sha256: e
                for e in book.entries()
                if e.sha256 in known.shards and (e.purpose, e.base_url) == (purpose, server)
            }
            if all(s in entries for s in known.shards):
                for s in known.shards:
                    e = entries[s]
                    items.append(
                        _Item(
                            Path(e.path or e.filename),
                            e.path or e.filename,
                            s,
                            e.bytes,
                            e.filename,
                            stamp,
                            str(src),
                        )
                    )
                continue
        # Shard in a scratch directory only to learn the shards' hashes; it goes away.
        with tempfile.TemporaryDirectory(prefix="ftprep-dry-run-") as scratch:
            result = split(src, max_size=limit, out_dir=Path(scratch), force=True, checksums=False)
            for it in _shard_items(result.shards, src):
                items.append(
                    _Item(
                        it.path,
                        f"(shard) {it.path.name}",
                        it.sha256,
                        it.bytes,
                        it.filename,
                        it.stamp,
                        it.source,
                    )
                )
    return items
