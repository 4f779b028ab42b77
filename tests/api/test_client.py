"""The six operations of FilesClient against a scripted server: what goes on the wire,
what comes back, and what is left on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ftprep
from ftprep.client import FileObject, FilesClient, RetryPolicy
from ftprep.errors import APIError, AuthenticationError, InputError, NotFoundError


def test_public_names_come_from_the_client_module() -> None:
    assert ftprep.FilesClient is FilesClient
    assert ftprep.FileObject is FileObject
    assert ftprep.RetryPolicy is RetryPolicy


# ----------------------------------------------------------------- upload


def test_upload_sends_multipart_with_purpose_and_jsonl_part(
    harness: Any, chat_file: Path, multipart_parts: Any
) -> None:
    h = harness()
    h.client.upload(chat_file, purpose="fine-tune", filename="custom.jsonl")
    request = h.api.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/files"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-length"] == str(len(h.api.bodies[0]))
    parts = multipart_parts(request, h.api.bodies[0])
    assert parts["purpose"][2] == b"fine-tune"
    filename, content_type, payload = parts["file"]
    assert (filename, content_type, payload) == (
        "custom.jsonl",
        "application/jsonl",
        chat_file.read_bytes(),
    )


class InspectingTransport(httpx.BaseTransport):
    """Looks at the request body as the network would see it (MockTransport reads the
    whole body into memory before its handler runs, which would hide the streaming)."""

    def __init__(self) -> None:
        self.stream_types: list[type] = []
        self.chunk_sizes: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.stream_types.append(type(request.stream))
        self.chunk_sizes.extend(len(chunk) for chunk in request.stream)  # type: ignore[union-attr]
        return httpx.Response(200, json={"id": "f1"})


def test_upload_body_is_streamed_from_disk_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"text": "' + b"a" * 300_000 + b'"}\n')
    transport = InspectingTransport()
    with FilesClient("k", transport=transport) as client:
        client.upload(path)
    assert not issubclass(transport.stream_types[0], httpx.ByteStream)
    assert sum(transport.chunk_sizes) > path.stat().st_size
    assert len(transport.chunk_sizes) >= 5
    assert max(transport.chunk_sizes) <= 64 * 1024


def test_upload_progress_counts_bytes_sent_and_restarts_on_retry(
    harness: Any, chat_file: Path
) -> None:
    events: list[int] = []
    h = harness(httpx.Response(503))
    h.client.upload(chat_file, progress=events.append)
    size = chat_file.stat().st_size
    assert sum(events) == size
    assert -size in events  # the retry took the bar back to zero


def test_upload_of_a_missing_path_is_an_input_error(harness: Any, tmp_path: Path) -> None:
    h = harness()
    with pytest.raises(InputError, match=r"missing\.jsonl"):
        h.client.upload(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="not a regular file"):
        h.client.upload(tmp_path)
    assert h.api.requests == []


# ----------------------------------------------------------------- list


def paged_server(items: list[dict[str, Any]], *, total: bool = True) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = int(request.url.params["page_size"])
        body = {
            "data": items[page * size : (page + 1) * size],
            "object": "list",
            "total": len(items) if total else None,
        }
        return httpx.Response(200, json=body)

    return handler


def test_list_reads_every_page_until_a_short_one(harness: Any, file_object: Any) -> None:
    items = [file_object(filename=f"f{i}.jsonl") for i in range(25)]
    h = harness(*[paged_server(items, total=False)] * 3)
    found = list(h.client.list(page_size=10))
    assert [f.id for f in found] == [i["id"] for i in items]
    assert [r.url.params["page"] for r in h.api.requests] == ["0", "1", "2"]


def test_list_stops_once_total_is_reached(harness: Any, file_object: Any) -> None:
    items = [file_object() for _ in range(20)]
    h = harness(*[paged_server(items)] * 3)
    assert len(list(h.client.list(page_size=10))) == 20
    assert len(h.api.requests) == 2  # page 2 would be empty: never asked for


def test_list_stops_when_the_server_ignores_page(harness: Any, file_object: Any) -> None:
    same = {"data": [file_object(), file_object()], "object": "list", "total": None}
    h = harness(*[httpx.Response(200, json=same)] * 5)
    assert len(list(h.client.list(page_size=2))) == 2
    assert len(h.api.requests) == 2


def test_list_passes_the_filters(harness: Any) -> None:
    empty = httpx.Response(200, json={"data": [], "object": "list", "total": 0})
    h = harness(empty)
    result = list(
        h.client.list(
            purpose="fine-tune",
            sample_type=["instruct", "pretrain"],
            source="upload",
            search="train",
            page_size=50,
        )
    )
    assert result == []
    params = h.api.requests[0].url.params
    assert params.get_list("sample_type") == ["instruct", "pretrain"]
    assert params["purpose"] == "fine-tune"
    assert params["source"] == "upload"
    assert params["search"] == "train"
    assert params["page_size"] == "50"
    assert params["page"] == "0"


def test_list_is_lazy(harness: Any) -> None:
    h = harness()
    iterator = h.client.list()
    assert isinstance(iterator, Iterator)
    assert h.api.requests == []


# ----------------------------------------------------------------- file objects


def test_file_object_is_parsed_leniently() -> None:
    f = FileObject.from_json(
        {
            "id": "e85980c9",
            "object": "file",
            "bytes": None,
            "created_at": 1759500189,
            "filename": "example.file.jsonl",
            "purpose": "something-new",
            "sample_type": "batch_result",
            "source": "repository",
            "num_lines": "2",  # wrong type: dropped, not fatal
            "a_future_field": {"x": 1},
        }
    )
    assert f.bytes is None
    assert f.purpose == "something-new"
    assert f.num_lines is None
    assert f.deleted is None
    assert f.to_dict()["filename"] == "example.file.jsonl"


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": 5}, [], "x"])
def test_a_body_without_an_id_is_not_a_file(body: Any) -> None:
    with pytest.raises(APIError, match="not a file object"):
        FileObject.from_json(body)


def test_retrieve_returns_deleted_flag(harness: Any, file_object: Any) -> None:
    obj = file_object(deleted=False)
    h = harness(httpx.Response(200, json=obj))
    found = h.client.retrieve(obj["id"])
    assert found.deleted is False
    assert h.api.requests[0].url.path == f"/v1/files/{obj['id']}"


def test_file_ids_are_escaped_in_the_path(harness: Any) -> None:
    h = harness(httpx.Response(404, json={"detail": "File not found."}))
    with pytest.raises(NotFoundError):
        h.client.retrieve("../../etc/passwd")
    assert h.api.requests[0].url.raw_path == b"/v1/files/..%2F..%2Fetc%2Fpasswd"


def test_delete_returns_the_servers_verdict(harness: Any) -> None:
    h = harness(httpx.Response(200, json={"id": "f1", "object": "file", "deleted": True}))
    assert h.client.delete("f1") is True
    assert h.api.requests[0].method == "DELETE"


def test_signed_url_sends_the_expiry(harness: Any) -> None:
    h = harness(httpx.Response(200, json={"url": "https://blob.example/f1?sig=x"}))
    assert h.client.signed_url("f1", expiry_hours=2) == "https://blob.example/f1?sig=x"
    request = h.api.requests[0]
    assert request.url.path == "/v1/files/f1/url"
    assert request.url.params["expiry"] == "2"


# ----------------------------------------------------------------- download


def streaming_body(data: bytes, fail_after: int | None = None) -> httpx.Response:
    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 1000):
            if fail_after is not None and i >= fail_after:
                raise httpx.ReadError("connection reset by peer")
            yield data[i : i + 1000]

    return httpx.Response(200, content=chunks())


def test_download_writes_the_content_and_returns_its_size(harness: Any, tmp_path: Path) -> None:
    data = b'{"text": "x"}\n' * 500
    h = harness(streaming_body(data))
    events: list[int] = []
    dest = tmp_path / "copy.jsonl"
    assert h.client.download("f1", dest, progress=events.append) == len(data)
    assert dest.read_bytes() == data
    assert sum(events) == len(data)
    assert h.api.requests[0].url.path == "/v1/files/f1/content"
    assert list(tmp_path.iterdir()) == [dest]


def test_download_cut_short_leaves_no_file(harness: Any, tmp_path: Path) -> None:
    h = harness(streaming_body(b"y" * 10_000, fail_after=5000))
    dest = tmp_path / "copy.jsonl"
    with pytest.raises(APIError):
        h.client.download("f1", dest, retry=RetryPolicy.never())
    assert list(tmp_path.iterdir()) == []


def test_download_cut_short_starts_over_on_retry(harness: Any, tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    h = harness(streaming_body(data, fail_after=5000), streaming_body(data))
    dest = tmp_path / "copy.jsonl"
    events: list[int] = []
    assert h.client.download("f1", dest, progress=events.append) == len(data)
    assert dest.read_bytes() == data
    assert sum(events) == len(data)


def test_download_keeps_an_existing_file_when_it_fails(harness: Any, tmp_path: Path) -> None:
    dest = tmp_path / "copy.jsonl"
    dest.write_bytes(b"old")
    h = harness(httpx.Response(404, json={"detail": "File not found."}))
    with pytest.raises(NotFoundError):
        h.client.download("f1", dest)
    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]


# ----------------------------------------------------------------- configuration


def test_missing_key_fails_before_any_request(
    monkeypatch: pytest.MonkeyPatch, harness: Any
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    h = harness(api_key=None)
    with pytest.raises(AuthenticationError, match="MISTRAL_API_KEY"):
        h.client.retrieve("f1")
    assert h.api.requests == []


def test_key_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, harness: Any, file_object: Any
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-from-env")
    monkeypatch.setenv("FTPREP_BASE_URL", "https://files.example:8443/")
    h = harness(httpx.Response(200, json=file_object()), api_key=None)
    h.client.retrieve("f1")
    request = h.api.requests[0]
    assert request.headers["authorization"] == "Bearer sk-from-env"
    assert str(request.url).startswith("https://files.example:8443/v1/files/f1")


def test_default_base_url_is_mistral(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FTPREP_BASE_URL", raising=False)
    with FilesClient("k") as client:
        assert client.base_url == "https://api.mistral.ai"


def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    with pytest.raises(AuthenticationError) as info:
        FilesClient("sk-abc def")
    assert "sk-abc" not in str(info.value)


def test_user_agent_names_ftprep(harness: Any, file_object: Any) -> None:
    h = harness(httpx.Response(200, json=file_object()))
    h.client.retrieve("f1")
    assert h.api.requests[0].headers["user-agent"].startswith("ftprep/")


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ftprep.FtprepError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ftprep.FtprepError):
        RetryPolicy(jitter=2)


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_a_file_that_changes_while_uploading_is_an_input_error_and_nothing_is_stored(
    tmp_path: Path, emulator: Any, change: str
) -> None:
    from ftprep.client import FilesClient, RetryPolicy
    from ftprep.errors import InputError

    path = tmp_path / "growing.jsonl"
    line = (
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    path.write_bytes(line * 4000)  # several of httpx's 64 KiB body chunks
    changed: list[bool] = []

    def tamper(_sent: int) -> None:
        if not changed:
            changed.append(True)
            if change == "grows":
                with path.open("ab") as fh:
                    fh.write(line * 10)
            else:
                with path.open("r+b") as fh:
                    fh.truncate(len(line) * 100)

    with FilesClient("key", base_url=emulator.base_url, retry=RetryPolicy.never()) as client:
        with pytest.raises(InputError, match="changed while it was being uploaded"):
            client.upload(path, progress=tamper)
        assert list(client.list()) == []
