"""The ``ftprep`` command: a thin layer over the library.

Each command module collects options, makes one library call inside
:func:`ftprep.cli._errors.error_handler`, renders the result and picks the exit code.
This package is the only place that imports click or prints.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

# command name -> (module, attribute). A command's module is imported only when that
# command runs, so `ftprep split` does not pay for jsonschema or httpx at start-up.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("ftprep.cli.validate_cmd", "validate"),
    "split": ("ftprep.cli.split_cmd", "split"),
    "upload": ("ftprep.cli.push_cmd", "upload"),
    "push": ("ftprep.cli.push_cmd", "push"),
    "files": ("ftprep.cli.files_cmd", "files"),
    "ledger": ("ftprep.cli.push_cmd", "ledger"),
    "emulator": ("ftprep.cli.emulator_cmd", "emulator"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ftprep")
def main() -> None:
    """Prepare fine-tuning datasets and ship them through Mistral's Files API."""
