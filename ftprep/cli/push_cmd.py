"""`ftprep upload`, `ftprep push`, `ftprep ledger` (not built yet)."""

from __future__ import annotations

import click


@click.command()
def upload() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")


@click.command()
def push() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")


@click.command()
def ledger() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")
