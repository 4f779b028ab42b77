"""The emulator as a client meets it: a real HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from ftprep.client import FilesClient, RetryPolicy
from ftprep.emulator import (
    EmulatorState,
    Fault,
    RequestRecord,
    _BadForm,
    _read_form,
    create_app,
    running,
)
from ftprep.errors import (
    AuthenticationError,
    NotFoundError,
    PayloadTooLargeError,
    ServerError,
    ServerValidationError,
    TransportError,
    UsageError,
)

# A server that waits for a client that waits for it must fail fast, not hang the run.
pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0)


def client_for(emu: Any, key: str = "any-key", **kwargs: Any) -> FilesClient:
    kwargs.setdefault("retry", FAST)
    return FilesClient(key, base_url=emu.base_url, **kwargs)


# ----------------------------------------------------------------- auth


def test_any_bearer_key_is_accepted_by_default(emulator: Any) -> None:
    response = httpx.get(f"{emulator.base_url}/v1/files", headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    assert response.json() == {"data": [], "object": "list", "total": 0}


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "x"])
def test_missing_or_malformed_authorization_is_401(emulator: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.get(f"{emulator.base_url}/v1/files", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_only_the_configured_key_is_accepted(tmp_path: Path, chat_file: Path) -> None:
    with running(tmp_path / "emu", api_key="right") as emu:
        with client_for(emu, "wrong") as c, pytest.raises(AuthenticationError):
            c.upload(chat_file)
        with client_for(emu, "right") as c:
            assert c.upload(chat_file).filename == "train.jsonl"
        assert [r.status for r in emu.requests] == [401, 200]


# ----------------------------------------------------------------- upload


def test_upload_returns_a_complete_file_object(emulator: Any, chat_file: Path) -> None:
    with client_for(emulator) as c:
        f = c.upload(chat_file)
    content = chat_file.read_bytes()
    assert f.bytes == len(content)
    assert f.num_lines == 3
    assert (f.purpose, f.sample_type, f.source) == ("fine-tune", "instruct", "upload")
    assert f.mimetype == "application/jsonl"
    assert f.created_at is not None and f.signature
    stored = emulator.data_dir / "content" / f.id
    assert stored.read_bytes() == content
    raw = httpx.get(
        f"{emulator.base_url}/v1/files/{f.id}", headers={"Authorization": "Bearer k"}
    ).json()
    for key in ("id", "object", "bytes", "created_at", "filename", "purpose", "sample_type"):
        assert key in raw
    for key in ("source", "num_lines", "mimetype", "signature", "deleted"):
        assert key in raw


def test_pretrain_text_is_detected(emulator: Any, tmp_path: Path) -> None:
    path = tmp_path / "text.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}', encoding="utf-8")
    with client_for(emulator) as c:
        f = c.upload(path)
    assert f.sample_type == "pretrain"
    assert f.num_lines == 2  # the last line counts without its newline


def test_same_name_and_content_returns_the_existing_file(
    emulator: Any, chat_file: Path, write_chat: Any, tmp_path: Path
) -> None:
    with client_for(emulator) as c:
        first = c.upload(chat_file)
        again = c.upload(chat_file)
        renamed = c.upload(chat_file, filename="other.jsonl")
        (tmp_path / "b").mkdir()
        changed = c.upload(write_chat(tmp_path / "b" / "train.jsonl", tag="changed"))
    assert again == first
    assert len({first.id, renamed.id, changed.id}) == 3
    assert len(emulator.files()) == 3


def test_over_the_size_limit_is_413_and_nothing_is_kept(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_bytes(b'{"text": "' + b"a" * 1500 + b'"}\n')  # counted while streaming
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"text": "' + b"a" * 200_000 + b'"}\n')  # refused by Content-Length
    with running(tmp_path / "emu", max_size=1000) as emu, client_for(emu) as c:
        for path in (small, big):
            with pytest.raises(PayloadTooLargeError, match="ftprep split"):
                c.upload(path)
        assert emu.files() == []
        assert [r.status for r in emu.requests] == [413, 413]
        assert list((emu.data_dir / "tmp").iterdir()) == []
        assert list((emu.data_dir / "content").iterdir()) == []


def test_invalid_fine_tune_data_is_422_with_line_numbers(emulator: Any, tmp_path: Path) -> None:
    pytest.importorskip("ftprep.validator")
    path = tmp_path / "bad.jsonl"
    good = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'
    path.write_text(f"{good}\nnot json at all\n{good}\n", encoding="utf-8")
    with client_for(emulator) as c, pytest.raises(ServerValidationError) as info:
        c.upload(path)
    assert info.value.status == 422
    assert 2 in [e.line_number for e in info.value.line_errors]
    assert "Invalid file format." in (info.value.server_message or "")
    assert emulator.files() == []


def test_batch_files_are_not_checked_as_fine_tune_data(emulator: Any, tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text('{"custom_id": "0", "body": {}}\n', encoding="utf-8")
    with client_for(emulator) as c:
        f = c.upload(path, purpose="batch")
    assert (f.purpose, f.sample_type) == ("batch", "batch_request")


def test_unknown_purpose_is_422(emulator: Any, chat_file: Path) -> None:
    with client_for(emulator) as c, pytest.raises(ServerValidationError, match="purpose"):
        c.upload(chat_file, purpose="nonsense")


def test_a_body_that_is_not_multipart_is_422(emulator: Any) -> None:
    response = httpx.post(
        f"{emulator.base_url}/v1/files",
        headers={"Authorization": "Bearer k"},
        json={"file": "x"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


# ----------------------------------------------------------------- reading files


def upload_many(emu: Any, tmp_path: Path, write_chat: Any, n: int) -> list[str]:
    ids = []
    with client_for(emu) as c:
        for i in range(n):
            ids.append(c.upload(write_chat(tmp_path / f"part-{i:02}.jsonl", records=1)).id)
    return ids


def test_listing_pages_with_total(emulator: Any, tmp_path: Path, write_chat: Any) -> None:
    ids = upload_many(emulator, tmp_path, write_chat, 25)
    auth = {"Authorization": "Bearer k"}
    url = f"{emulator.base_url}/v1/files"
    page2 = httpx.get(url, params={"page": 2, "page_size": 10}, headers=auth).json()
    assert (len(page2["data"]), page2["total"], page2["object"]) == (5, 25, "list")
    no_total = httpx.get(url, params={"include_total": "false"}, headers=auth).json()
    assert no_total["total"] is None
    with client_for(emulator) as c:
        listed = [f.id for f in c.list(page_size=10)]
    assert listed == list(reversed(ids))  # newest first
    bad = httpx.get(url, params={"page_size": "ten"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "page_size"]


def test_listing_filters(emulator: Any, tmp_path: Path, write_chat: Any) -> None:
    with client_for(emulator) as c:
        chat = c.upload(write_chat(tmp_path / "train-a.jsonl"))
        text_path = tmp_path / "notes.jsonl"
        text_path.write_text('{"text": "x"}\n', encoding="utf-8")
        text = c.upload(text_path)
        batch = c.upload(text_path, purpose="batch", filename="batch-in.jsonl")
        assert [f.id for f in c.list(search="TRAIN")] == [chat.id]
        assert [f.id for f in c.list(sample_type="pretrain")] == [text.id]
        assert [f.id for f in c.list(purpose="batch")] == [batch.id]
        assert {f.id for f in c.list(sample_type=["pretrain", "instruct"])} == {chat.id, text.id}
        assert list(c.list(source="repository")) == []


def test_retrieve_download_delete(emulator: Any, chat_file: Path, tmp_path: Path) -> None:
    with client_for(emulator) as c:
        f = c.upload(chat_file)
        assert c.retrieve(f.id).deleted is False
        assert c.download(f.id, tmp_path / "copy.jsonl") == chat_file.stat().st_size
        assert (tmp_path / "copy.jsonl").read_bytes() == chat_file.read_bytes()
        assert c.delete(f.id) is True
        with pytest.raises(NotFoundError):
            c.retrieve(f.id)
        with pytest.raises(NotFoundError):
            c.delete(f.id)
        with pytest.raises(ServerValidationError, match="UUID"):
            c.retrieve("not-a-uuid")
    assert not (emulator.data_dir / "content" / f.id).exists()


def test_signed_url_serves_content_without_auth_until_it_expires(
    emulator: Any, chat_file: Path
) -> None:
    with client_for(emulator) as c:
        f = c.upload(chat_file)
        url = c.signed_url(f.id, expiry_hours=1)
    assert url.startswith(emulator.base_url)
    assert httpx.get(url).content == chat_file.read_bytes()
    assert httpx.get(url.replace("token=", "token=0")).status_code == 403
    later = url.replace("expires=", "expires=9")  # a forged, later expiry
    assert httpx.get(later).status_code == 403
    emulator.advance_clock(3601)
    assert httpx.get(url).status_code == 403


def test_signed_url_expiry_is_checked(emulator: Any, chat_file: Path) -> None:
    with client_for(emulator) as c:
        f = c.upload(chat_file)
    response = httpx.get(
        f"{emulator.base_url}/v1/files/{f.id}/url",
        params={"expiry": 500},
        headers={"Authorization": "Bearer k"},
    )
    assert response.status_code == 422


def test_unknown_routes_answer_json_404(emulator: Any) -> None:
    response = httpx.get(f"{emulator.base_url}/v2/nothing", headers={"Authorization": "Bearer k"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


# ----------------------------------------------------------------- persistence


def test_files_survive_a_restart(tmp_path: Path, chat_file: Path) -> None:
    data = tmp_path / "emu"
    with running(data) as emu, client_for(emu) as c:
        f = c.upload(chat_file)
    metadata = json.loads((data / "files.json").read_text(encoding="utf-8"))
    assert [e["object"]["id"] for e in metadata["files"]] == [f.id]
    with running(data) as emu, client_for(emu) as c:
        assert [x.id for x in c.list()] == [f.id]
        assert c.retrieve(f.id).bytes == f.bytes
        assert c.upload(chat_file).id == f.id  # the dedupe rule still knows it
        c.download(f.id, tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == chat_file.read_bytes()


def test_unreadable_metadata_is_refused_with_a_fix(tmp_path: Path) -> None:
    data = tmp_path / "emu"
    data.mkdir()
    (data / "files.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="move it aside"):
        EmulatorState(data)


# ----------------------------------------------------------------- faults


def test_fail_next_with_retry_after_is_seen_and_retried(emulator: Any, chat_file: Path) -> None:
    sleeps: list[float] = []
    emulator.fail_next(503, retry_after=7, method="POST", path="/v1/files")
    with client_for(emulator, sleep=sleeps.append) as c:
        assert list(c.list()) == []  # GET does not match the fault
        c.upload(chat_file)
    assert sleeps == [7.0]
    assert [(r.method, r.status) for r in emulator.requests] == [
        ("GET", 200),
        ("POST", 503),
        ("POST", 200),
    ]


def test_fail_next_counts_down(emulator: Any) -> None:
    emulator.fail_next(500, times=2, body={"detail": "boom"})
    with client_for(emulator, retry=RetryPolicy.never()) as c:
        for _ in range(2):
            with pytest.raises(ServerError, match="boom"):
                list(c.list())
        assert list(c.list()) == []
    assert emulator.state.faults() == []


def test_delay_makes_a_read_timeout(emulator: Any) -> None:
    emulator.delay_next(1.0)
    timeout = httpx.Timeout(5.0, read=0.2)
    with client_for(emulator, timeout=timeout, retry=RetryPolicy.never()) as c:
        with pytest.raises(TransportError, match="did not answer in time"):
            list(c.list())


def test_dropped_upload_is_stored_but_unanswered(emulator: Any, chat_file: Path) -> None:
    emulator.drop_next()
    with client_for(emulator, retry=RetryPolicy.never()) as c:
        with pytest.raises(TransportError, match="lost"):
            c.upload(chat_file)
        stored = emulator.files()
        assert len(stored) == 1
        assert emulator.requests[-1] == RequestRecord("POST", "/v1/files", 200, True)
        # A caller that reconciles by listing finds it, and no duplicate is made.
        emulator.drop_next()
        f = c.upload(
            chat_file,
            filename="second.jsonl",
            on_ambiguous_failure=lambda failed: next(c.list(search=failed.filename), None),
        )
    assert f.filename == "second.jsonl"
    assert len(emulator.files()) == 2


def test_faults_can_be_set_over_http(emulator: Any) -> None:
    control = f"{emulator.base_url}/_emulator/faults"
    response = httpx.post(control, json={"status": 429, "retry_after": "3", "times": 2})
    assert response.status_code == 201
    assert response.json()["faults"][0]["times"] == 2
    answer = httpx.get(f"{emulator.base_url}/v1/files", headers={"Authorization": "Bearer k"})
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
    assert httpx.delete(control).json() == {"faults": []}
    assert httpx.post(control, json={"status": "x"}).status_code == 422
    assert httpx.post(control, json={"bogus": 1}).status_code == 422
    log = httpx.get(f"{emulator.base_url}/_emulator/requests").json()["requests"]
    assert [(r["method"], r["status"]) for r in log] == [("GET", 429)]


def test_control_endpoints_refuse_other_hosts(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    app = create_app(EmulatorState(tmp_path / "emu"))
    with TestClient(app, client=("10.1.2.3", 40000)) as remote:
        assert remote.post("/_emulator/faults", json={"status": 500}).status_code == 403
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/_emulator/faults").status_code == 200


@pytest.mark.parametrize(
    "data",
    [{"status": 99}, {"status": 500, "drop": True}, {"times": 0, "status": 500}, {}],
)
def test_nonsense_faults_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        Fault.from_dict(data)


# ----------------------------------------------------------------- the multipart reader


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def sample_form(payload: bytes) -> tuple[bytes, bytes]:
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"purpose": "fine-tune"},
        files={"file": ("a b\u00e9.jsonl", payload, "application/jsonl")},
    )
    body = request.read()
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    return body, boundary


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_form_reader_handles_any_chunking(tmp_path: Path, chunk_size: int) -> None:
    # The payload holds things that look like the boundary's start.
    payload = b'{"text": "\r\n--\r\n-"}\r\n--x\n' * 50
    body, boundary = sample_form(payload)
    with open(tmp_path / "out", "wb") as sink:
        form = asyncio.run(_read_form(chunked(body, chunk_size), boundary, sink, 10**6))
    assert (tmp_path / "out").read_bytes() == payload
    assert form.fields == {"purpose": "fine-tune"}
    assert form.filename == "a b\u00e9.jsonl"
    assert form.size == len(payload)
    assert form.lines == payload.count(b"\n")


def test_form_reader_rejects_a_truncated_body(tmp_path: Path) -> None:
    body, boundary = sample_form(b"x" * 100)
    with open(tmp_path / "out", "wb") as sink, pytest.raises(_BadForm):
        asyncio.run(_read_form(chunked(body[:-10], 16), boundary, sink, 10**6))
