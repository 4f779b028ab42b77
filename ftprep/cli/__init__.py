"""The ``ftprep`` command: a thin layer over the library.

Each command module collects options, makes one library call inside
:func:`ftprep.cli._errors.error_handler`, renders the result and picks the exit code.
This package is the only place that imports click or prints.
"""

from __future__ import annotations

import click

from .. import __version__
from . import emulator_cmd, files_cmd, push_cmd, split_cmd, validate_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ftprep")
def main() -> None:
    """Prepare fine-tuning datasets and ship them through Mistral's Files API."""


main.add_command(validate_cmd.validate)
main.add_command(split_cmd.split)
main.add_command(push_cmd.upload)
main.add_command(push_cmd.push)
main.add_command(push_cmd.ledger)
main.add_command(files_cmd.files)
main.add_command(emulator_cmd.emulator)
