"""Helpers for the validator's tests: record builders and the real `ftprep` program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FTPREP = Path(sys.executable).with_name("ftprep")


def chat(user: str = "How do I true a wheel?", answer: str = "Use a truing stand.") -> bytes:
    """One clean chat record as a JSON line (no newline)."""
    record = {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }
    return json.dumps(record, ensure_ascii=False).encode()


def tool_chat(n: int) -> bytes:
    """A clean chat record with a tool call: it takes the full (slow) check."""
    call_id = f"call{n:05d}"[-9:].rjust(9, "0")
    record = {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "stock",
                    "description": "Parts in stock",
                    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}},
                },
            }
        ],
        "messages": [
            {"role": "user", "content": f"Is part {n} in stock?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "stock", "arguments": json.dumps({"sku": str(n)})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "3 left"},
            {"role": "assistant", "content": f"Yes, part {n} is in stock."},
        ],
    }
    return json.dumps(record).encode()


def run_ftprep(
    *args: str, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    environ.update(env or {})
    return subprocess.run(
        [str(FTPREP), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with no pyproject.toml above it that could change the defaults."""
    d = tmp_path / "work"
    d.mkdir()
    return d
