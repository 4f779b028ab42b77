"""`ftprep upload`, `ftprep push` and `ftprep ledger`.

Each command makes one library call (:func:`ftprep.pusher.upload`,
:func:`ftprep.pusher.push`, :class:`ftprep.ledger.Ledger`) inside ``error_handler()``
and renders what came back. The library modules are imported inside the commands so
that ``ftprep --help`` never loads httpx.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..sizes import format_size
from ._common import (
    Output,
    PathsCommand,
    Progress,
    common_options,
    emit_json,
    make_output,
    validation_options,
)
from ._errors import FOUND_PROBLEMS, error_handler, exit_code_for_report, redact

if TYPE_CHECKING:  # pragma: no cover
    from tqdm import tqdm

    from ..ledger import Ledger
    from ..problems import Report
    from ..progress import ProgressCallback
    from ..pusher import PushResult

F = TypeVar("F", bound=Callable[..., Any])

#: The emulator started by ``--emulator`` keeps its files and its own ledger here, so
#: that sandbox IDs never mix with real ones (deleting the directory resets both).
EMULATOR_DIR = Path(".ftprep") / "emulator"
#: The key sent to the emulator: any bearer key is accepted there, and a real
#: MISTRAL_API_KEY must not travel anywhere it is not needed.
EMULATOR_KEY = "ftprep-emulator-no-key-needed"


# --------------------------------------------------------------------------- options


def _upload_options(func: F) -> F:
    func = click.option(
        "--emulator",
        is_flag=True,
        help="Send to a local emulator started for this run (no key needed; "
        f"nothing leaves this machine; files and ledger in {EMULATOR_DIR}/).",
    )(func)
    func = click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1, max=64),
        default=1,
        show_default=True,
        help="Uploads in flight at once.",
    )(func)
    func = click.option(
        "--ledger",
        "ledger_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Where file IDs are recorded (default .ftprep/ledger).",
    )(func)
    func = click.option(
        "--base-url",
        envvar="FTPREP_BASE_URL",
        default=None,
        metavar="URL",
        help="Files API server (default https://api.mistral.ai; env FTPREP_BASE_URL).",
    )(func)
    func = click.option(
        "--purpose",
        default="fine-tune",
        show_default=True,
        help="Purpose sent with each file (fine-tune, batch, ocr).",
    )(func)
    return func


# --------------------------------------------------------------------------- terminal


class _Bars:
    """tqdm bars on stderr: one for all bytes sent, one per file in flight."""

    def __init__(self, output: Output) -> None:
        self._lock = threading.Lock()
        self._bars: dict[str, tqdm[Any]] = {}
        self._free: list[int] = []
        self._enabled = output.progress_enabled
        # Made when the first upload starts, so that nothing shows while validating.
        self._overall: tqdm[Any] | None = None

    def _bar(self, desc: str, total: int, position: int) -> tqdm[Any]:
        from tqdm import tqdm

        return tqdm(
            total=total,
            desc=desc,
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            leave=False,
            position=position,
        )

    @property
    def overall(self) -> ProgressCallback | None:
        if not self._enabled:
            return None

        def sent(n: int) -> None:
            with self._lock:
                if self._overall is not None:
                    self._overall.update(n)

        return sent

    def start(self, name: str, total: int) -> ProgressCallback | None:
        if not self._enabled:
            return None
        with self._lock:
            if self._overall is None:
                self._overall = self._bar("uploaded", 0, 0)
            assert self._overall.total is not None
            self._overall.total += total
            self._overall.refresh()
            position = self._free.pop(0) if self._free else len(self._bars) + 1
            shown = Path(name).name
            desc = shown if len(shown) <= 40 else "…" + shown[-39:]
            bar = self._bar(desc, total, position)
            self._bars[name] = bar

        def sent(n: int) -> None:
            with self._lock:
                bar.update(n)

        return sent

    def finish(self, name: str) -> None:
        with self._lock:
            bar = self._bars.pop(name, None)
            if bar is not None:
                self._free.append(bar.pos if isinstance(bar.pos, int) else 1)
                bar.close()

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._overall is not None:
                self._overall.close()


class _StderrWarnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"warning: {redact(record.getMessage())}", err=True)
        except Exception:  # a warning that cannot be shown must not end the run
            self.handleError(record)


@contextlib.contextmanager
def _warnings_shown() -> Iterator[None]:
    """The library's warnings (a ledger rebuilt, a duplicate found) as stderr lines."""
    logger = logging.getLogger("ftprep")
    handler = _StderrWarnings(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _total_bytes(paths: tuple[str, ...]) -> int | None:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += Path(p).stat().st_size
    return total or None


def _closing(first: Progress, then: ProgressCallback | None) -> ProgressCallback | None:
    """The upload callback, which also clears the validation bar once uploading starts."""
    if then is None:
        return None
    closed = False

    def sent(n: int) -> None:
        nonlocal closed
        if not closed:
            closed = True
            first.__exit__(None, None, None)
        then(n)

    return sent


# --------------------------------------------------------------------------- the server


@contextlib.contextmanager
def _server(
    emulator: bool,
    base_url: str | None,
    ledger_path: Path | None,
    output: Output,
) -> Iterator[tuple[Any, Ledger, str | None]]:
    """The client, the ledger and the ledger's name for the server, for one run."""
    from ..client import FilesClient
    from ..ledger import DEFAULT_LEDGER_PATH, Ledger, ensure_state_dir

    if not emulator:
        with FilesClient(base_url=base_url) as client:
            yield client, Ledger(ledger_path or DEFAULT_LEDGER_PATH), None
        return
    if base_url is not None:
        raise click.UsageError("--emulator and --base-url (or FTPREP_BASE_URL) exclude each other")
    from ..emulator import running

    ensure_state_dir(EMULATOR_DIR.parent)
    with running(EMULATOR_DIR) as emu, FilesClient(EMULATOR_KEY, base_url=emu.base_url) as client:
        if not output.quiet and output.format != "json":
            click.echo(
                f"using a local emulator at {emu.base_url} (files in {EMULATOR_DIR}/): "
                "nothing is sent to Mistral",
                err=True,
            )
        # Its port changes every run, so the ledger names it by its data directory.
        label = f"emulator:{EMULATOR_DIR.resolve()}"
        yield client, Ledger(ledger_path or EMULATOR_DIR / "ledger"), label


def _dry_server(emulator: bool, base_url: str | None, ledger_path: Path | None) -> Any:
    from ..ledger import DEFAULT_LEDGER_PATH, Ledger

    if emulator:
        if base_url is not None:
            raise click.UsageError(
                "--emulator and --base-url (or FTPREP_BASE_URL) exclude each other"
            )
        return Ledger(ledger_path or EMULATOR_DIR / "ledger"), f"emulator:{EMULATOR_DIR.resolve()}"
    return Ledger(ledger_path or DEFAULT_LEDGER_PATH), None


# --------------------------------------------------------------------------- rendering


def _render_uploads(result: PushResult, output: Output, *, push: bool, ledger: Ledger) -> None:
    if output.format == "json":
        emit_json(result.to_dict(training_files=push))
        return
    if output.quiet:
        if push:
            click.echo(json.dumps(result.training_files))
        else:
            for fid in result.file_ids:
                click.echo(fid)
        return
    for u in result.uploads:
        fid = u.file_id or "-"
        click.echo(f"{u.status:9} {fid:36}  {u.path} ({format_size(u.bytes)})")
    counts: dict[str, int] = {}
    for u in result.uploads:
        counts[u.status] = counts.get(u.status, 0) + 1
    said = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to send"
    if result.dry_run:
        click.echo(f"dry run: {said}; nothing was sent (ledger {ledger.path})")
    else:
        click.echo(f"{said}; recorded in {ledger.path} for {result.base_url}")
    if push and not result.dry_run:
        click.echo(f"training_files: {json.dumps(result.training_files)}")


def _render_problems(report: Report, output: Output) -> None:
    """Validation problems exactly as ``ftprep validate`` prints them."""
    from .. import report as renderers

    renderers.render(report, sys.stdout, output.format, quiet=output.quiet)
    sys.stdout.flush()


# --------------------------------------------------------------------------- commands


@click.command(cls=PathsCommand)
@click.argument("paths", nargs=-1, required=True)
@_upload_options
@common_options
def upload(
    paths: tuple[str, ...],
    purpose: str,
    base_url: str | None,
    ledger_path: Path | None,
    jobs: int,
    emulator: bool,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Upload files as they are and record their IDs in the ledger.

    Content the ledger has and the server still holds is not sent again. The key
    comes from MISTRAL_API_KEY.
    """
    output = make_output(output_format, quiet, no_progress)
    with error_handler(), _warnings_shown():
        from ..pusher import upload as do_upload

        bars = _Bars(output)
        try:
            with _server(emulator, base_url, ledger_path, output) as (client, ledger, label):
                result = do_upload(
                    paths,
                    purpose=purpose,
                    client=client,
                    ledger=ledger,
                    jobs=jobs,
                    progress=bars.overall,
                    file_progress=bars,
                    ledger_base_url=label,
                )
        finally:
            bars.close()
        _render_uploads(result, output, push=False, ledger=ledger)


@click.command(cls=PathsCommand)
@click.argument("paths", nargs=-1, required=True)
@validation_options
@click.option(
    "--max-size",
    default=None,
    metavar="SIZE",
    help="Shard files over this size (default 500MB), e.g. 200MB, 1GiB.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where shards are written (default .ftprep/shards).",
)
@click.option(
    "--allow-invalid",
    is_flag=True,
    help="Upload even when validation finds errors (they are still shown).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate and show what would be sent and what the ledger has; send nothing.",
)
@_upload_options
@common_options
def push(
    paths: tuple[str, ...],
    schema: str | None,
    max_size: str | None,
    max_errors: int | None,
    ignore: tuple[str, ...],
    select: tuple[str, ...],
    out_dir: Path | None,
    allow_invalid: bool,
    dry_run: bool,
    purpose: str,
    base_url: str | None,
    ledger_path: Path | None,
    jobs: int,
    emulator: bool,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Validate, shard what is over --max-size, upload, record, and print the file IDs.

    Nothing is uploaded if any file has errors (unless --allow-invalid). The output
    ends with a training_files list ready for a fine-tuning job. Try it without a key:
    ftprep push --emulator sample_data/*.jsonl
    """
    output = make_output(output_format, quiet, no_progress)
    with error_handler(), _warnings_shown():
        from .. import config
        from ..pusher import push as do_push
        from ..sizes import DEFAULT_MAX_SIZE, parse_size

        cfg = config.load()
        limit = parse_size(max_size) if max_size is not None else cfg.max_size or DEFAULT_MAX_SIZE
        options: dict[str, Any] = {
            "schema": schema,
            "config": cfg,
            "max_size": limit,
            "max_errors": max_errors if max_errors is not None else cfg.max_errors,
            "ignore": ignore,
            "select": select or cfg.select,
            "out_dir": out_dir,
            "allow_invalid": allow_invalid,
            "purpose": purpose,
            "jobs": jobs,
        }
        total = _total_bytes(paths)
        if dry_run:
            ledger, label = _dry_server(emulator, base_url, ledger_path)
            with Progress(output, total=total, desc="validate") as checking:
                result = do_push(
                    paths,
                    **options,
                    validate_progress=checking.callback,
                    base_url=base_url,
                    ledger=ledger,
                    dry_run=True,
                    ledger_base_url=label,
                )
        else:
            bars = _Bars(output)
            try:
                # The bar starts after the server is up, so that the server's notice is
                # not printed across it.
                with (
                    _server(emulator, base_url, ledger_path, output) as (client, ledger, label),
                    Progress(output, total=total, desc="validate") as checking,
                ):
                    result = do_push(
                        paths,
                        **options,
                        validate_progress=checking.callback,
                        client=client,
                        ledger=ledger,
                        progress=_closing(checking, bars.overall),
                        file_progress=bars,
                        ledger_base_url=label,
                    )
            finally:
                bars.close()
        if result.report is not None and output.format != "json":
            _render_problems(result.report, output)
        if result.refused:
            if output.format == "json":
                emit_json(result.to_dict())
            else:
                n = sum(f.error_count for f in result.report.files) if result.report else 0
                click.echo(
                    f"error: validation found {n} error(s); nothing was uploaded. Fix them, "
                    "or pass --allow-invalid to upload anyway",
                    err=True,
                )
            sys.exit(exit_code_for_report(result.report) if result.report else FOUND_PROBLEMS)
        _render_uploads(result, output, push=True, ledger=ledger)


@click.command()
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The ledger to show (default .ftprep/ledger).",
)
@click.option(
    "--emulator",
    is_flag=True,
    help=f"Show the ledger of runs made with --emulator ({EMULATOR_DIR}/ledger).",
)
@common_options
def ledger(
    ledger_path: Path | None,
    emulator: bool,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Show what was uploaded, from the ledger (no network, no key)."""
    output = make_output(output_format, quiet, no_progress)
    with error_handler():
        from ..ledger import DEFAULT_LEDGER_PATH, Ledger

        default = EMULATOR_DIR / "ledger" if emulator else DEFAULT_LEDGER_PATH
        book = Ledger(ledger_path or default)
        entries = book.entries()
        sources = book.sources()
        if output.format == "json":
            emit_json(
                {
                    "ledger": str(book.path),
                    "uploads": [
                        {
                            "path": e.path,
                            "sha256": e.sha256,
                            "bytes": e.bytes,
                            "file_id": e.file_id,
                            "status": e.state,
                            "filename": e.filename,
                            "purpose": e.purpose,
                            "base_url": e.base_url,
                            "recorded_at": e.recorded_at,
                        }
                        for e in entries
                    ],
                    "sources": [s.to_dict() for s in sources],
                }
            )
            return
        if output.quiet:
            for e in entries:
                if e.file_id is not None:
                    click.echo(e.file_id)
            return
        if not entries:
            click.echo(f"{book.path}: nothing recorded yet")
            return
        by_server: dict[tuple[str, str], list[Any]] = {}
        for e in entries:
            by_server.setdefault((e.base_url, e.purpose), []).append(e)
        for (server, purpose), group in by_server.items():
            click.echo(f"{server} (purpose {purpose}):")
            for e in group:
                fid = e.file_id or "-"
                when = e.recorded_at[:19].replace("T", " ")
                shown = e.path or e.filename
                click.echo(f"  {e.state:8} {fid:36}  {when}  {shown} ({format_size(e.bytes)})")
        for s in sources:
            click.echo(
                f"{s.path}: sharded into {len(s.shards)} part(s) at {format_size(s.max_size)}"
            )
