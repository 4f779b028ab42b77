"""`ftprep validate`: check files, print the problems, exit 0 (clean), 1 (errors) or 2."""

from __future__ import annotations

import os
import sys

import click

from .. import config, report, validator
from ..problems import FileReport, Report
from ..reader import DEFAULT_MAX_LINE_BYTES
from ..sizes import DEFAULT_MAX_SIZE, parse_size
from ._common import PathsCommand, Progress, common_options, make_output, validation_options
from ._errors import error_handler, exit_code_for_report


def _total_bytes(paths: tuple[str, ...]) -> int | None:
    total = 0
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if os.path.isfile(p):
            total += st.st_size
    return total or None


@click.command(cls=PathsCommand)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str, readable=False))
@validation_options
@click.option(
    "--max-size",
    default=None,
    metavar="SIZE",
    help="Upload limit per file (default 500MB); over it is an error naming `ftprep split`.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Worker processes for big files (default: one per CPU).",
)
@click.option(
    "--max-line-bytes",
    default=None,
    metavar="SIZE",
    help=f"Longest line read (default {DEFAULT_MAX_LINE_BYTES // 2**20}MiB); longer is FT110.",
)
@common_options
def validate(
    paths: tuple[str, ...],
    schema: str | None,
    max_size: str | None,
    max_errors: int | None,
    jobs: int | None,
    ignore: tuple[str, ...],
    select: tuple[str, ...],
    max_line_bytes: str | None,
    output_format: str,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Check JSON Lines fine-tuning files; nothing is written.

    Prints `path:line:col: CODE message` for each problem and a summary per file.
    Exit status: 0 clean (warnings allowed), 1 errors found, 2 a path cannot be read
    or an option is wrong. Defaults come from [tool.ftprep] in pyproject.toml.
    """
    output = make_output(output_format, quiet, no_progress)
    with error_handler():
        cfg = config.load()
        limit = parse_size(max_size) if max_size is not None else cfg.max_size or DEFAULT_MAX_SIZE
        line_limit = (
            parse_size(max_line_bytes) if max_line_bytes is not None else DEFAULT_MAX_LINE_BYTES
        )
        default_schema = schema or cfg.schema or "auto"
        errors_cap = max_errors if max_errors is not None else cfg.max_errors
        selected = select or cfg.select
        # Group paths that share options, then give the files back in the order asked.
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for i, p in enumerate(paths):
            file_schema = default_schema if schema else cfg.schema_for(p, default_schema)
            key = (file_schema, (*ignore, *cfg.ignore_for(p)))
            groups.setdefault(key, []).append(i)
        files: list[FileReport | None] = [None] * len(paths)
        with Progress(output, total=_total_bytes(paths), desc="validate") as bar:
            for (file_schema, file_ignore), indexes in groups.items():
                part = validator.validate(
                    [paths[i] for i in indexes],
                    schema=file_schema,
                    max_size=limit,
                    max_errors=errors_cap,
                    jobs=jobs,
                    max_line_bytes=line_limit,
                    ignore=file_ignore,
                    select=selected,
                    progress=bar.callback,
                )
                for i, f in zip(indexes, part.files, strict=True):
                    files[i] = f
        result = Report([f for f in files if f is not None])
        report.render(result, sys.stdout, output.format, quiet=output.quiet)
        sys.stdout.flush()
        code = exit_code_for_report(result)
    sys.exit(code)
