"""`ftprep files ...` (not built yet)."""

from __future__ import annotations

import click


@click.group()
def files() -> None:
    """Not built yet."""
