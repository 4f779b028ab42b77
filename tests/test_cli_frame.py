"""The CLI frame every command shares: exit codes and arguments that look like options."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ftprep import errors
from ftprep.cli._common import PathsCommand
from ftprep.cli._errors import EXIT_CODE_BY_ERROR, error_handler


def command_raising(exc: BaseException) -> click.Command:
    @click.command()
    def cmd() -> None:
        with error_handler():
            raise exc

    return cmd


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.UsageError("bad option"), 2),
        (errors.ConfigError("bad key", key="x"), 2),
        (errors.SchemaError("bad schema"), 2),
        (errors.InsecureURLError("http to a remote host"), 2),
        (errors.InputError("no such file"), 2),
        (errors.OutputError("exists"), 2),
        (errors.SplitError("record too large"), 1),
        (errors.LedgerError("locked"), 1),
        (errors.APIError("refused", status=400), 1),
        (errors.AuthenticationError("check MISTRAL_API_KEY", status=401), 1),
        (errors.PayloadTooLargeError("run ftprep split", status=413), 1),
        (KeyboardInterrupt(), 130),
        (RuntimeError("a bug"), 3),
    ],
)
def test_each_way_to_end_has_one_exit_code(exc: BaseException, code: int) -> None:
    result = CliRunner().invoke(command_raising(exc))
    assert result.exit_code == code
    assert "Traceback" not in result.output


def test_every_branch_of_the_exception_tree_has_an_exit_code() -> None:
    branches = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.FtprepError)
    ]
    for cls in branches:
        assert any(issubclass(cls, mapped) for mapped, _ in EXIT_CODE_BY_ERROR), cls


def test_an_internal_error_prints_one_line_and_logs_the_traceback_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary = "sk-canary-3f1f0c9e"
    monkeypatch.setenv("MISTRAL_API_KEY", canary)
    result = CliRunner().invoke(command_raising(RuntimeError(f"boom {canary}")))
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "this is a bug" in lines[0]
    log = Path(lines[0].rsplit("Details: ", 1)[1])
    try:
        text = log.read_text(encoding="utf-8")
        assert "RuntimeError" in text and "Traceback" in text
        assert canary not in text
        assert canary not in result.output
    finally:
        log.unlink()


@click.command(cls=PathsCommand)
@click.option("--schema")
@click.option("-q", "--quiet", is_flag=True)
@click.argument("paths", nargs=-1)
def echo_paths(schema: str | None, quiet: bool, paths: tuple[str, ...]) -> None:
    click.echo(f"schema={schema} quiet={quiet} paths={list(paths)}")


def test_existing_files_starting_with_dash_are_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("-rf.jsonl", "--help.jsonl", "-q.jsonl", "ok.jsonl"):
        (tmp_path / name).write_text("{}\n")
    result = CliRunner().invoke(
        echo_paths, ["--schema", "chat", "-q", "-rf.jsonl", "ok.jsonl", "--help.jsonl", "-q.jsonl"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "schema=chat quiet=True paths=['ok.jsonl', '-rf.jsonl', '--help.jsonl', '-q.jsonl']"
    )


def test_an_option_value_that_names_a_file_stays_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-s.json").write_text("{}")
    result = CliRunner().invoke(echo_paths, ["--schema", "-s.json", "a.jsonl"])
    assert result.output.strip() == "schema=-s.json quiet=False paths=['a.jsonl']"


def test_unknown_dash_arguments_that_are_not_files_are_still_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(echo_paths, ["--no-such-option", "a.jsonl"])
    assert result.exit_code == 2
    assert "No such option" in result.output
