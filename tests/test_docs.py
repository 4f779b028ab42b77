"""The docs keep up with the code: every problem code and every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftprep.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"\bFT\d{3}\b")


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "ftprep").rglob("*.py"):
        found |= set(CODE.findall(path.read_text(encoding="utf-8")))
    return found


def test_the_source_emits_codes_of_every_family() -> None:
    families = {code[:3] for code in codes_in_source()}
    assert {"FT0", "FT1", "FT2", "FT3", "FT4"} <= families


@pytest.mark.parametrize("code", sorted(codes_in_source()))
def test_every_problem_code_has_a_documented_entry(code: str) -> None:
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") + (
        ROOT / "docs" / "reading.md"
    ).read_text(encoding="utf-8")
    # An entry is a heading or a table row that starts with the code, not a passing mention.
    entry = re.compile(rf"^(#+ .*\b{code}\b|\|\s*`?{code}`?\s*\|)", re.MULTILINE)
    assert entry.search(docs), f"{code} has no entry in docs/rules.md or docs/reading.md"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_and_is_in_the_readme(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"ftprep {name}" in readme
