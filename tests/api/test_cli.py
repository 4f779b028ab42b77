"""`ftprep files ...` and `ftprep emulator` as a user runs them: real processes, a real
server on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from ftprep.client import FilesClient

pytestmark = pytest.mark.timeout(120)


def ftprep(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftprep", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def cli_env(emulator: Any) -> dict[str, str]:
    return {**os.environ, "MISTRAL_API_KEY": "sk-cli", "FTPREP_BASE_URL": emulator.base_url}


def test_files_commands_print_text_and_json(
    emulator: Any, cli_env: dict[str, str], chat_file: Path, tmp_path: Path
) -> None:
    with FilesClient("k", base_url=emulator.base_url) as client:
        f = client.upload(chat_file)

    listed = ftprep("files", "list", "-o", "json", cwd=tmp_path, env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert [x["id"] for x in json.loads(listed.stdout)["files"]] == [f.id]

    text = ftprep("files", "list", "--purpose", "fine-tune", cwd=tmp_path, env=cli_env)
    assert f.id in text.stdout and "train.jsonl" in text.stdout
    assert "1 file" in text.stderr
    quiet = ftprep("files", "list", "-q", "--search", "nomatch", cwd=tmp_path, env=cli_env)
    assert (quiet.returncode, quiet.stdout) == (0, "")

    got = ftprep("files", "get", f.id, "-o", "json", cwd=tmp_path, env=cli_env)
    assert json.loads(got.stdout) == {**f.to_dict(), "deleted": False}

    url = ftprep("files", "url", f.id, "--expiry", "2", cwd=tmp_path, env=cli_env)
    assert url.stdout.startswith(emulator.base_url + "/signed/")

    saved = ftprep("files", "download", f.id, "-o", "json", cwd=tmp_path, env=cli_env)
    assert json.loads(saved.stdout) == {
        "id": f.id,
        "path": f"{f.id}.jsonl",
        "bytes": chat_file.stat().st_size,
    }
    assert (tmp_path / f"{f.id}.jsonl").read_bytes() == chat_file.read_bytes()
    again = ftprep("files", "download", f.id, cwd=tmp_path, env=cli_env)
    assert again.returncode == 2
    assert "--force" in again.stderr
    forced = ftprep("files", "download", f.id, "--force", cwd=tmp_path, env=cli_env)
    assert forced.returncode == 0

    deleted = ftprep("files", "delete", f.id, "-o", "json", cwd=tmp_path, env=cli_env)
    assert json.loads(deleted.stdout) == {"deleted": [{"id": f.id, "deleted": True}]}
    gone = ftprep("files", "get", f.id, cwd=tmp_path, env=cli_env)
    assert gone.returncode == 1
    assert gone.stderr.startswith("error: ") and "404" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_files_commands_refuse_plain_http_elsewhere(tmp_path: Path) -> None:
    env = {**os.environ, "MISTRAL_API_KEY": "k", "FTPREP_BASE_URL": "http://files.example"}
    result = ftprep("files", "list", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "http://" in result.stderr and "files.example" in result.stderr


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ftprep",
            "emulator",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *list(extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert "serving the Files API at http://127.0.0.1:" in first, first
    return process, first.split(" at ")[1].split()[0]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_emulator_command_serves_until_stopped_and_keeps_files(
    stop: signal.Signals, tmp_path: Path, chat_file: Path
) -> None:
    data = tmp_path / "data"
    process, url = start_emulator(data, "--api-key", "local-key")
    try:
        with FilesClient("local-key", base_url=url) as client:
            f = client.upload(chat_file)
    finally:
        process.send_signal(stop)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in err
    assert "local-key" not in err

    process, url = start_emulator(data)
    try:
        with FilesClient("any", base_url=url) as client:
            assert [x.id for x in client.list()] == [f.id]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_emulator_command_rejects_a_busy_port(tmp_path: Path) -> None:
    process, url = start_emulator(tmp_path / "a")
    try:
        port = url.rsplit(":", 1)[1]
        clash = ftprep(
            "emulator",
            "--port",
            port,
            "--data-dir",
            str(tmp_path / "b"),
            cwd=tmp_path,
            env=dict(os.environ),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert clash.returncode == 2
    assert "cannot listen" in clash.stderr


BLOCK_EXTRA = "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "


def test_without_the_extra_the_emulator_says_what_to_install(tmp_path: Path) -> None:
    code = BLOCK_EXTRA + "from ftprep.cli import main; main(['emulator', '--port', '0'])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "pip install 'ftprep[emulator]'" in result.stderr


def test_the_client_works_without_the_extra(tmp_path: Path) -> None:
    code = BLOCK_EXTRA + (
        "import ftprep, ftprep.emulator; c = ftprep.FilesClient('k'); c.close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn')"
        " and sys.modules[m] is not None))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
