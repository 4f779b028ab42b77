"""Where the key may go: only https, or plain http to loopback; never through a
redirect; never into output, logs, exception text, reprs or files."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftprep.client import FilesClient, RetryPolicy, check_base_url
from ftprep.errors import APIError, FtprepError, InsecureURLError, UsageError

pytestmark = pytest.mark.timeout(120)

REFUSED = [
    "http://api.example.com",
    "http://localhost@evil.example/",
    "http://127.0.0.1:80@evil.example/",
    "http://localhost.evil.example/",
    "http://127.0.0.1.nip.io/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",
    "https://user:pass@api.mistral.ai",
    "http://10.0.0.1:8000",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_base_urls_are_refused_before_any_request(url: str) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    with pytest.raises(InsecureURLError):
        FilesClient("k", base_url=url, transport=httpx.MockTransport(never))


def test_unsafe_base_url_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTPREP_BASE_URL", "http://api.example.com")
    with pytest.raises(InsecureURLError, match=r"api\.example\.com"):
        FilesClient("k")


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000", "http://127.0.0.1:8000", "http://127.5.6.7", "http://[::1]:8000"],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "f1"})

    with FilesClient("k", base_url=url, transport=httpx.MockTransport(handler)) as client:
        client.retrieve("f1")
    assert seen[0].url.path == "/v1/files/f1"


@pytest.mark.parametrize("url", ["ftp://files.example", "not a url", "https://", "https://h/?a=1"])
def test_malformed_base_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        check_base_url(url)


def test_https_keeps_a_path_prefix() -> None:
    assert check_base_url("https://gateway.example/mistral/") == "https://gateway.example/mistral"


def test_redirects_are_not_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "https://evil.example/v1/files"})

    client = FilesClient("sk-x", transport=httpx.MockTransport(handler), sleep=lambda s: None)
    with client, pytest.raises(APIError) as info:
        client.list().__next__()
    assert [r.url.host for r in seen] == ["api.mistral.ai"]
    assert info.value.status == 307
    assert "redirect" in str(info.value)


# ----------------------------------------------------------------- the canary key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def all_text_of(error: BaseException) -> str:
    """Everything a person or a crash reporter could get to see of an exception."""
    texts = [str(error), repr(error), *map(repr, error.args)]
    texts += traceback.format_exception(error)
    texts += traceback.TracebackException.from_exception(error, capture_locals=True).format()
    for name in ("server_message", "line_errors"):
        texts.append(repr(getattr(error, name, None)))
    return "".join(texts)


def test_canary_key_never_leaks_from_the_library(
    canary: str,
    tmp_path: Path,
    chat_file: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("starlette")
    from ftprep.emulator import running

    monkeypatch.setenv("MISTRAL_API_KEY", canary)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "ftprep"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []
    errors: list[BaseException] = []
    fast = RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0)

    def expect_error(call: Any) -> None:
        with pytest.raises(FtprepError) as info:
            call()
        errors.append(info.value)

    # Every operation succeeding, then each way of failing, against a real server.
    with running(tmp_path / "emu") as emu, FilesClient(base_url=emu.base_url, retry=fast) as c:
        seen.append(repr(c))
        seen.append(repr(c.__dict__))
        f = c.upload(chat_file)
        seen.append(repr(f))
        seen.append(repr(list(c.list())))
        seen.append(repr(c.retrieve(f.id)))
        c.download(f.id, tmp_path / "copy.jsonl")
        seen.append(c.signed_url(f.id))
        emu.fail_next(500, times=3)
        expect_error(lambda: c.retrieve(f.id))
        emu.fail_next(
            422,
            body={"detail": "Invalid file format.", "errors": [{"message": "m", "line_number": 2}]},
        )
        expect_error(lambda: c.upload(chat_file))
        emu.drop_next()
        expect_error(lambda: c.upload(chat_file, filename="other.jsonl", retry=RetryPolicy.never()))
        seen.append(repr(c.delete(f.id)))
    with running(tmp_path / "emu2", api_key="the-right-key") as emu:
        with FilesClient(base_url=emu.base_url) as c:
            expect_error(lambda: c.retrieve(f.id))  # 401
            expect_error(lambda: c.upload(chat_file))  # 401 on upload
    with FilesClient(base_url=f"http://127.0.0.1:{free_port()}", retry=fast) as c:
        expect_error(lambda: list(c.list()))  # connection refused

    assert len(errors) == 6
    seen += [all_text_of(e) for e in errors]
    seen += [record.getMessage() for record in caplog.records]
    seen += [repr(record.__dict__) for record in caplog.records]
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)
    for text in seen:
        assert canary not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


def test_redacting_filter_scrubs_a_key_logged_by_http_libraries(
    canary: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with FilesClient(canary):
        logging.getLogger("httpcore.http11").debug(
            "headers %s", [(b"Authorization", f"Bearer {canary}")]
        )
        logging.getLogger("httpx").debug("key is %s", canary)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all(canary not in m and "[redacted]" in m for m in messages)


def test_key_is_not_in_the_pickle_or_repr_of_the_client(canary: str) -> None:
    import pickle

    with FilesClient(canary) as client:
        assert canary not in repr(client)
        assert canary not in repr(vars(client))
        with pytest.raises(TypeError):
            pickle.dumps(client._secret)


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftprep", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_canary_key_never_leaks_from_files_commands(
    canary: str, tmp_path: Path, chat_file: Path
) -> None:
    pytest.importorskip("starlette")
    from ftprep.emulator import running

    env = {**os.environ, "MISTRAL_API_KEY": canary}
    results: list[subprocess.CompletedProcess[str]] = []
    with running(tmp_path / "emu") as emu, FilesClient(canary, base_url=emu.base_url) as c:
        file_id = c.upload(chat_file).id
        env["FTPREP_BASE_URL"] = emu.base_url
        for args in (
            ["files", "list"],
            ["files", "list", "-o", "json"],
            ["files", "get", file_id],
            ["files", "get", file_id, "-o", "json"],
            ["files", "url", file_id],
            ["files", "download", file_id, "--out", "copy.jsonl"],
            ["files", "get", "00000000-0000-4000-8000-000000000000"],  # 404
        ):
            results.append(run_cli(args, env, tmp_path))
        emu.fail_next(500, times=5)
        results.append(run_cli(["files", "list"], env, tmp_path))
        results.append(run_cli(["files", "delete", file_id], env, tmp_path))
    with running(tmp_path / "emu2", api_key="other") as emu:
        results.append(run_cli(["files", "list", "--base-url", emu.base_url], env, tmp_path))
    refused = f"http://127.0.0.1:{free_port()}"
    results.append(run_cli(["files", "list", "--base-url", refused], env, tmp_path))
    results.append(run_cli(["files", "list", "--base-url", "http://evil.example"], env, tmp_path))

    codes = [r.returncode for r in results]
    assert codes == [0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 2], codes
    for r in results:
        assert canary not in r.stdout and canary not in r.stderr
        assert "Traceback" not in r.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
