"""`ftprep emulator` (not built yet)."""

from __future__ import annotations

import click


@click.command()
def emulator() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")
