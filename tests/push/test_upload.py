"""`ftprep.upload`: one POST per new content, reuse of what the server still has,
and reconciliation whenever an upload may have been stored without an answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ftprep.client import FilesClient, RetryPolicy
from ftprep.emulator import Emulator
from ftprep.errors import APIError, AuthenticationError, InputError, PayloadTooLargeError
from ftprep.ledger import Ledger, file_sha256, upload_name
from ftprep.pusher import upload


def test_first_upload_posts_and_records_then_rerun_reuses(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    write_chat: Callable[..., Path],
    posts: Callable[[Emulator], int],
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 3)
    ledger = Ledger(tmp_path / "state" / "ledger")
    first = upload([data], client=client, ledger=ledger)
    [u] = first.uploads
    assert u.status == "uploaded" and u.path == str(data)
    [server_file] = emulator.files()
    assert server_file["id"] == u.file_id
    assert server_file["filename"] == upload_name("train.jsonl", u.sha256)
    assert ledger.file_ids(data) == [u.file_id]

    second = upload([data], client=client, ledger=ledger)
    assert [(x.status, x.file_id) for x in second.uploads] == [("reused", u.file_id)]
    assert posts(emulator) == 1
    assert second.training_files == [{"file_id": u.file_id, "weight": 1}]


def test_same_content_twice_in_one_run_is_sent_once(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    write_chat: Callable[..., Path],
    posts: Callable[[Emulator], int],
) -> None:
    a = write_chat(tmp_path / "a.jsonl", 2)
    b = tmp_path / "b.jsonl"
    b.write_bytes(a.read_bytes())
    result = upload([a, b], client=client, ledger=tmp_path / "ledger")
    assert [u.status for u in result.uploads] == ["uploaded", "reused"]
    assert result.uploads[0].file_id == result.uploads[1].file_id
    assert posts(emulator) == 1
    assert len(result.training_files) == 1


def test_file_deleted_on_server_is_uploaded_again_and_ledger_updated(
    tmp_path: Path, emulator: Emulator, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    ledger = Ledger(tmp_path / "ledger")
    old = upload([data], client=client, ledger=ledger).uploads[0].file_id
    assert old is not None
    client.delete(old)
    again = upload([data], client=client, ledger=ledger).uploads[0]
    assert again.status == "uploaded" and again.file_id != old
    assert ledger.file_ids(data) == [again.file_id]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_on_lookup_stops_with_ledger_untouched(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    status: int,
    write_chat: Callable[..., Path],
    posts: Callable[[Emulator], int],
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    ledger = Ledger(tmp_path / "ledger")
    upload([data], client=client, ledger=ledger)
    before = ledger.path.read_bytes()
    emulator.fail_next(status, method="GET", path="/v1/files/*")
    with pytest.raises(AuthenticationError):
        upload([data], client=client, ledger=ledger)
    assert ledger.path.read_bytes() == before
    assert posts(emulator) == 1


def test_lost_response_after_store_is_adopted_without_a_second_post(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    write_chat: Callable[..., Path],
    posts: Callable[[Emulator], int],
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    emulator.drop_next()
    result = upload([data], client=client, ledger=tmp_path / "ledger")
    [stored] = emulator.files()
    assert result.uploads[0].file_id == stored["id"]
    assert posts(emulator) == 1
    assert Ledger(tmp_path / "ledger").file_ids(data) == [stored["id"]]


def test_server_errors_then_success_leave_exactly_one_file(
    tmp_path: Path, emulator: Emulator, client: FilesClient, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    emulator.fail_next(502, method="POST", path="/v1/files")
    emulator.fail_next(429, method="POST", path="/v1/files", retry_after="0")
    emulator.fail_next(503, method="POST", path="/v1/files", retry_after="0")
    result = upload([data], client=client, ledger=tmp_path / "ledger")
    assert len(emulator.files()) == 1
    assert result.uploads[0].file_id == emulator.files()[0]["id"]
    # 502 may have stored it: the listing is checked before the next POST.
    listed = [r for r in emulator.requests if r.method == "GET" and r.path == "/v1/files"]
    assert len(listed) >= 1


def test_refused_upload_leaves_no_pending_entry(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    with FilesClient("k", base_url=emulator.base_url) as c:
        emulator.fail_next(413, method="POST", path="/v1/files")
        with pytest.raises(PayloadTooLargeError):
            upload([data], client=c, ledger=tmp_path / "ledger")
    assert Ledger(tmp_path / "ledger").entries() == []


def test_unrecoverable_ambiguous_failure_leaves_pending_for_the_next_run(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    ledger = Ledger(tmp_path / "ledger")
    with FilesClient("k", base_url=emulator.base_url, retry=RetryPolicy.never()) as c:
        emulator.fail_next(500, method="POST", path="/v1/files")
        with pytest.raises(Exception, match="500"):
            upload([data], client=c, ledger=ledger)
        [entry] = ledger.entries()
        assert entry.state == "pending"
        result = upload([data], client=c, ledger=ledger)
    assert result.uploads[0].status == "uploaded"
    assert [e.state for e in ledger.entries()] == ["uploaded"]
    assert len(emulator.files()) == 1


def test_missing_or_non_regular_path_is_an_input_error(tmp_path: Path, client: FilesClient) -> None:
    with pytest.raises(InputError, match="no such file"):
        upload([tmp_path / "nope.jsonl"], client=client, ledger=tmp_path / "ledger")
    with pytest.raises(InputError, match="not a regular file"):
        upload([tmp_path], client=client, ledger=tmp_path / "ledger")


class _InFlight(httpx.BaseTransport):
    """Counts uploads in flight between the client and the network."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_post = request.method == "POST"
        if is_post:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
        try:
            return self.inner.handle_request(request)
        finally:
            if is_post:
                with self.lock:
                    self.now -= 1

    def close(self) -> None:
        self.inner.close()


def test_jobs_caps_uploads_in_flight(
    tmp_path: Path, emulator: Emulator, write_chat: Callable[..., Path]
) -> None:
    files = [write_chat(tmp_path / f"f{i:02}.jsonl", 2, start=i * 10) for i in range(12)]
    emulator.delay_next(0.3, times=12, method="POST", path="/v1/files")
    counter = _InFlight()
    with FilesClient("k", base_url=emulator.base_url, transport=counter) as c:
        result = upload(files, client=c, ledger=tmp_path / "ledger", jobs=4)
    assert [u.status for u in result.uploads] == ["uploaded"] * 12
    assert len(emulator.files()) == 12
    assert 1 < counter.peak <= 4


def test_dry_run_sends_nothing_and_needs_no_key(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    monkeypatch: pytest.MonkeyPatch,
    write_chat: Callable[..., Path],
) -> None:
    a = write_chat(tmp_path / "a.jsonl", 2)
    b = write_chat(tmp_path / "b.jsonl", 2, start=5)
    upload([a], client=client, ledger=tmp_path / "ledger")
    sent = len(emulator.requests)
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    result = upload([a, b], ledger=tmp_path / "ledger", base_url=emulator.base_url, dry_run=True)
    assert [u.status for u in result.uploads] == ["recorded", "new"]
    assert result.uploads[0].file_id == emulator.files()[0]["id"]
    assert result.uploads[1].file_id is None
    assert len(emulator.requests) == sent


def test_ledger_holds_no_key(
    tmp_path: Path, client: FilesClient, canary_key: str, write_chat: Callable[..., Path]
) -> None:
    data = write_chat(tmp_path / "train.jsonl", 2)
    state = tmp_path / ".ftprep"
    upload([data], client=client, ledger=state / "ledger")
    for f in state.rglob("*"):
        if f.is_file():
            assert canary_key.encode() not in f.read_bytes(), f
            assert canary_key[-12:].encode() not in f.read_bytes(), f
    assert sorted(p.name for p in state.iterdir()) == [
        ".gitignore",
        "CACHEDIR.TAG",
        "ledger",
        "ledger.lock",
    ]


def test_duplicates_found_when_reconciling_adopt_the_oldest_and_name_the_others(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    write_chat: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    posts: Callable[[Emulator], int],
) -> None:
    data = write_chat(tmp_path / "a.jsonl", 2)
    other = tmp_path / "other.jsonl"
    other.write_bytes(data.read_bytes().replace(b"answer 0", b"answer 7"))
    ledger = Ledger(tmp_path / "ledger")
    sha, size = file_sha256(data)
    name = upload_name("a.jsonl", sha)
    # A run died after its POST: the ledger says pending, the server holds two
    # files of that name and size (one of them stored later by something else).
    with ledger.session() as s:
        s.mark_pending(
            sha, size, purpose="fine-tune", base_url=client.base_url, filename=name, path=None
        )
    oldest = client.upload(data, filename=name).id
    emulator.advance_clock(60)
    newer = client.upload(other, filename=name).id
    with caplog.at_level("WARNING", logger="ftprep"):
        result = upload([data], client=client, ledger=ledger)
    assert [(u.status, u.file_id) for u in result.uploads] == [("reused", oldest)]
    assert f"ftprep files delete {newer}" in caplog.text
    assert posts(emulator) == 2


def test_success_without_a_file_object_is_never_recorded_as_an_id(
    tmp_path: Path,
    emulator: Emulator,
    client: FilesClient,
    write_chat: Callable[..., Path],
) -> None:
    data = write_chat(tmp_path / "a.jsonl", 2)
    ledger = Ledger(tmp_path / "ledger")
    emulator.fail_next(200, method="POST", path="/v1/files", body={"status": "ok"})
    with pytest.raises(APIError, match="not a file object"):
        upload([data], client=client, ledger=ledger)
    # Checked against the listing (nothing there), then left pending for the next run.
    listed = [r for r in emulator.requests if (r.method, r.path) == ("GET", "/v1/files")]
    assert len(listed) == 1
    [entry] = ledger.entries()
    assert (entry.state, entry.file_id) == ("pending", None)
    result = upload([data], client=client, ledger=ledger)
    assert result.uploads[0].file_id == emulator.files()[0]["id"]
