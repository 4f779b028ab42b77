"""`ftprep split`: shard one file under the size limit, optionally carving a validation file."""

from __future__ import annotations

import os

import click

from .. import splitter
from ..errors import UsageError
from ..sizes import format_size, parse_size
from ._common import Output, Progress, common_options, emit_json, make_output
from ._errors import error_handler


@click.command()
@click.argument("path", type=click.Path(path_type=str, readable=False))
@click.option(
    "--max-size",
    default="500MB",
    show_default=True,
    metavar="SIZE",
    help="Largest shard, e.g. 500MB, 200MiB, 1000000 (bytes).",
)
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(path_type=str),
    help="Directory for the shards; created if missing.",
)
@click.option(
    "--validation-size",
    default=None,
    metavar="SIZE|FRACTION",
    help="Carve whole records into {stem}.validation.jsonl: a size (1MB) or a fraction "
    "of the file (0.05, 5%; capped at Mistral's 1 MB).",
)
@click.option("--shuffle", is_flag=True, help="Write the records in a shuffled order.")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed for --shuffle; the same seed gives the same bytes.",
)
@click.option("--force", is_flag=True, help="Replace existing output files.")
@common_options
def split(
    path: str,
    max_size: str,
    out_dir: str,
    validation_size: str | None,
    shuffle: bool,
    seed: int | None,
    force: bool,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Shard PATH into balanced files of at most --max-size, each ending on a line.

    Shards are named {stem}.part-0001-of-0004.jsonl; without --shuffle they join
    back into PATH byte for byte. A file already under the limit gives one shard.
    """
    output = make_output(output_format, quiet, no_progress)
    with error_handler():
        if seed is not None and not shuffle:
            raise UsageError("--seed only applies with --shuffle")
        limit = parse_size(max_size)
        try:
            total: int | None = os.stat(path).st_size * (2 if shuffle else 1)
        except OSError:
            total = None  # the library reports why the path cannot be read
        with Progress(output, total=total, desc="split") as bar:
            result = splitter.split(
                path,
                out_dir=out_dir,
                max_size=limit,
                validation_size=validation_size,
                shuffle=shuffle,
                seed=seed,
                force=force,
                # Only the JSON output shows the digests; hashing is most of the CPU time.
                checksums=output.format == "json",
                progress=bar.callback,
            )
        _render(result, output, limit, out_dir)


def _render(result: splitter.SplitResult, output: Output, limit: int, out_dir: str) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output.format == "json":
        emit_json(result.to_dict())
        return
    if output.quiet:
        return
    rows = [(str(s.path), format_size(s.bytes), _lines(s.lines), "") for s in result.shards]
    if result.validation is not None:
        v = result.validation
        rows.append((str(v.path), format_size(v.bytes), _lines(v.lines), "(validation)"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        line = f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        click.echo(line.rstrip())
    count = len(result.shards)
    summary = (
        f"{count} shard{'s' if count != 1 else ''} of at most {format_size(limit)} in {out_dir}"
    )
    if result.seed is not None:
        summary += f" (shuffled with --seed {result.seed})"
    click.echo(summary)


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"
