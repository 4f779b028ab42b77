"""`ftprep files list|get|delete|download|url`: the Files API itself."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import OutputError
from ._common import Progress, common_options, emit_json, make_output
from ._errors import error_handler

F = TypeVar("F", bound=Callable[..., Any])


def _server_options(func: F) -> F:
    return click.option(
        "--base-url",
        envvar="FTPREP_BASE_URL",
        default=None,
        metavar="URL",
        help="Files API server (default https://api.mistral.ai; env FTPREP_BASE_URL).",
    )(func)


def _client(base_url: str | None) -> Any:
    # Imported here so that `ftprep --help` and the other commands never load httpx.
    from ..client import FilesClient

    return FilesClient(base_url=base_url)


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _safe(text: str | None) -> str:
    """A server-supplied string made safe for one terminal line."""
    if text is None:
        return "-"
    return "".join(ch if ch.isprintable() else "?" for ch in text)


@click.group()
def files() -> None:
    """Talk to the Files API: list, inspect, delete and fetch uploaded files.

    The key comes from MISTRAL_API_KEY; the server from --base-url or FTPREP_BASE_URL.
    """


@files.command("list")
@click.option("--purpose", default=None, help="Only files of this purpose, e.g. fine-tune.")
@click.option("--search", default=None, help="Only files whose name contains this text.")
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Files asked for per request (all pages are read).",
)
@_server_options
@common_options
def list_files(
    purpose: str | None,
    search: str | None,
    page_size: int,
    base_url: str | None,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """List the files on the server, newest first (as the server orders them)."""
    output = make_output(output_format, quiet, no_progress)
    with error_handler(), _client(base_url) as client:
        found = list(client.list(purpose=purpose, search=search, page_size=page_size))
        if output.format == "json":
            emit_json({"files": [f.to_dict() for f in found]})
            return
        if output.quiet:
            for f in found:
                click.echo(f.id)
            return
        if found:
            click.echo(f"{'ID':36}  {'BYTES':>12}  {'CREATED (UTC)':16}  {'PURPOSE':9}  FILENAME")
        for f in found:
            size = "-" if f.bytes is None else f"{f.bytes:,}"
            click.echo(
                f"{f.id:36}  {size:>12}  {_when(f.created_at):16}  "
                f"{_safe(f.purpose):9}  {_safe(f.filename)}"
            )
        click.echo(f"{len(found)} file{'s' if len(found) != 1 else ''}", err=True)


@files.command("get")
@click.argument("file_id")
@_server_options
@common_options
def get_file(
    file_id: str, base_url: str | None, output_format: str, quiet: bool, no_progress: bool
) -> None:
    """Show one file's details."""
    output = make_output(output_format, quiet, no_progress)
    with error_handler(), _client(base_url) as client:
        found = client.retrieve(file_id)
        if output.format == "json":
            emit_json(found.to_dict())
            return
        for key, value in found.to_dict().items():
            if value is not None:
                shown = _when(value) + " UTC" if key in ("created_at", "expires_at") else value
                click.echo(f"{key + ':':12} {_safe(str(shown))}")


@files.command("delete")
@click.argument("file_ids", nargs=-1, required=True, metavar="FILE_ID...")
@_server_options
@common_options
def delete_files(
    file_ids: tuple[str, ...],
    base_url: str | None,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Delete files from the server."""
    output = make_output(output_format, quiet, no_progress)
    with error_handler(), _client(base_url) as client:
        results = []
        for file_id in file_ids:
            deleted = client.delete(file_id)
            results.append({"id": file_id, "deleted": deleted})
            if output.format != "json" and not output.quiet:
                click.echo(f"{'deleted' if deleted else 'not deleted'} {file_id}")
        if output.format == "json":
            emit_json({"deleted": results})


@files.command("download")
@click.argument("file_id")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to save it (default: FILE_ID.jsonl here). The server's file name is "
    "never used as a path.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@_server_options
@common_options
def download_file(
    file_id: str,
    out: Path | None,
    force: bool,
    base_url: str | None,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Save a file's content; the target is written whole or not at all."""
    output = make_output(output_format, quiet, no_progress)
    with error_handler():
        dest = out if out is not None else Path(f"{_plain_name(file_id)}.jsonl")
        if os.path.lexists(dest) and not force:
            raise OutputError(f"{dest} exists; pass --force to replace it, or choose --out")
        with _client(base_url) as client, Progress(output, total=None, desc=file_id) as bar:
            written = client.download(file_id, dest, progress=bar.callback)
        if output.format == "json":
            emit_json({"id": file_id, "path": str(dest), "bytes": written})
        elif not output.quiet:
            click.echo(f"wrote {dest} ({written:,} bytes)")


@files.command("url")
@click.argument("file_id")
@click.option(
    "--expiry",
    type=click.IntRange(1, 168),
    default=24,
    show_default=True,
    help="Hours the URL stays valid.",
)
@_server_options
@common_options
def signed_url(
    file_id: str,
    expiry: int,
    base_url: str | None,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Print a signed URL that serves the file's content without the key."""
    output = make_output(output_format, quiet, no_progress)
    with error_handler(), _client(base_url) as client:
        url = client.signed_url(file_id, expiry_hours=expiry)
        if output.format == "json":
            emit_json({"id": file_id, "url": url, "expiry_hours": expiry})
        else:
            click.echo(url)


def _plain_name(file_id: str) -> str:
    """A file id reduced to characters that are safe in a file name."""
    kept = "".join(ch for ch in file_id if ch.isalnum() or ch in "-_")
    return kept or "download"
