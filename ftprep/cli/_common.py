"""Options every command shares, and the small pieces of terminal handling."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click
from tqdm import tqdm

from ..progress import ProgressCallback

OutputFormat = Literal["text", "json", "github"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Output:
    """How a command talks to the user, decided once from the common options."""

    format: OutputFormat = "text"
    quiet: bool = False
    no_progress: bool = False

    @property
    def progress_enabled(self) -> bool:
        # Bars only for a person watching: never in json output, never when stderr is
        # a pipe or a file, never under pre-commit (which sets PRE_COMMIT=1).
        return (
            not self.no_progress
            and not self.quiet
            and self.format != "json"
            and os.environ.get("PRE_COMMIT") != "1"
            and sys.stderr.isatty()
        )


def common_options(func: F) -> F:
    """``--output-format``, ``-q/--quiet`` and ``--no-progress``, gathered into ``output``."""

    func = click.option("--no-progress", is_flag=True, help="Never show progress bars.")(func)
    func = click.option("-q", "--quiet", is_flag=True, help="Print only problems and errors.")(func)
    func = click.option(
        "--output-format",
        "-o",
        type=click.Choice(["text", "json", "github"]),
        default="text",
        show_default=True,
        help="How results are printed on stdout.",
    )(func)
    return func


def make_output(output_format: str, quiet: bool, no_progress: bool) -> Output:
    fmt: OutputFormat = (
        "json" if output_format == "json" else ("github" if output_format == "github" else "text")
    )
    return Output(format=fmt, quiet=quiet, no_progress=no_progress)


class Progress:
    """A tqdm bar on stderr when a person is watching, and nothing otherwise.

    ``callback`` is what the library gets: it is called with bytes just processed.
    """

    def __init__(self, output: Output, *, total: int | None, desc: str) -> None:
        self._bar: tqdm[Any] | None = None
        if output.progress_enabled:
            self._bar = tqdm(
                total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr, leave=False
            )

    @property
    def callback(self) -> ProgressCallback | None:
        bar = self._bar
        if bar is None:
            return None

        def advance(n: int) -> None:
            bar.update(n)

        return advance

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


class PathsCommand(click.Command):
    """A command whose arguments are paths, some of which may start with ``-``.

    pre-commit passes file names exactly as git knows them, so ``-rf.jsonl`` must be a
    path, not an option. An argument that starts with ``-``, names an existing file,
    is not an option of this command and does not stand where an option's value goes,
    is moved behind ``--`` before click parses the line.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names: set[str] = set()
        takes_value: set[str] = set()
        for param in self.params:
            if isinstance(param, click.Option):
                names.update(param.opts, param.secondary_opts)
                if not param.is_flag and not param.count:
                    takes_value.update(param.opts)
        names.update(ctx.help_option_names)
        kept: list[str] = []
        dash_paths: list[str] = []
        value_next = False
        rest: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                rest = args[i:]
                break
            if value_next:
                kept.append(arg)
                value_next = False
            elif arg.startswith("-") and arg not in names and os.path.lexists(arg):
                dash_paths.append(arg)
            else:
                kept.append(arg)
                value_next = arg in takes_value
        if dash_paths:
            rest = ["--", *dash_paths, *rest[1:]]
        return super().parse_args(ctx, kept + rest)


def emit_json(data: Any) -> None:
    """Print one JSON document on stdout, the way every command does."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def validation_options(func: F) -> F:
    """``--schema``, ``--max-errors``, ``--ignore``, ``--select``: what validate and push share."""
    func = click.option(
        "--select",
        multiple=True,
        metavar="CODE",
        help="Report only these codes or code prefixes. Repeatable.",
    )(func)
    func = click.option(
        "--ignore",
        multiple=True,
        metavar="CODE",
        help="Do not report this code or code prefix (e.g. FT120, FT4). Repeatable.",
    )(func)
    func = click.option(
        "--max-errors",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Show at most N problems per file; the rest are counted.",
    )(func)
    func = click.option(
        "--schema",
        default=None,
        metavar="auto|chat|pretrain|classifier|PATH.json",
        help="Record format; auto (default, or [tool.ftprep]) detects it per file.",
    )(func)
    return func
