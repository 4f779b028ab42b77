"""`ftprep emulator`: a local server speaking the Files API wire format."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import click

from ..sizes import parse_size
from ._errors import error_handler


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="0 picks a free port.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".ftprep/emulator"),
    show_default=True,
    help="Where uploaded files and their metadata are kept (across restarts).",
)
@click.option(
    "--api-key",
    envvar="FTPREP_EMULATOR_API_KEY",
    default=None,
    help="Accept only this bearer key (default: any non-empty key; env FTPREP_EMULATOR_API_KEY).",
)
@click.option(
    "--max-size",
    default="500MB",
    show_default=True,
    help="Largest file accepted; bigger uploads get 413 like the real API.",
)
@click.option(
    "--log-level",
    type=click.Choice(["warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="info also logs each request.",
)
def emulator(
    host: str, port: int, data_dir: Path, api_key: str | None, max_size: str, log_level: str
) -> None:
    """Serve the Files API wire format locally, for trying ftprep without a key.

    Point ftprep at it with FTPREP_BASE_URL=http://127.0.0.1:8000 (any MISTRAL_API_KEY
    works unless --api-key is given). Ctrl-C or SIGTERM stops it.
    """
    with error_handler():
        from ..emulator import serve

        limit = parse_size(max_size)
        if not _is_loopback(host):
            click.echo(
                f"warning: listening on {host}, not loopback: other machines can reach it",
                err=True,
            )

        def ready(url: str) -> None:
            click.echo(f"ftprep emulator: serving the Files API at {url} (data in {data_dir})")
            click.echo(f"  export FTPREP_BASE_URL={url}", err=True)
            sys.stdout.flush()

        serve(
            data_dir,
            host=host,
            port=port,
            api_key=api_key,
            max_size=limit,
            on_ready=ready,
            log_level=log_level,
        )
        click.echo("ftprep emulator: stopped", err=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
