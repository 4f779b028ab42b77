"""Retries: which failures are tried again, how long ftprep waits, and that every
attempt carries the whole file. The server is scripted over httpx.MockTransport and
waits go to a recording fake, so nothing here sleeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ftprep.client import AmbiguousUpload, FileObject, RetryPolicy, parse_retry_after
from ftprep.errors import (
    APIError,
    AuthenticationError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ServerValidationError,
    TransportError,
)

NOW = 1_695_998_817.0  # the harness clock: Fri, 29 Sep 2023 14:46:57 GMT


def assert_each_body_carries_the_file(api: Any, path: Path, multipart_parts: Any) -> None:
    content = path.read_bytes()
    for request, body in zip(api.requests, api.bodies, strict=True):
        _filename, _content_type, payload = multipart_parts(request, body)["file"]
        assert payload == content
        assert len(payload) == len(content)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_is_retried_then_succeeds(
    status: int, harness: Any, chat_file: Path, multipart_parts: Any
) -> None:
    h = harness(httpx.Response(status, json={"detail": "try later"}))
    uploaded = h.client.upload(chat_file)
    assert uploaded.filename == "train.jsonl"
    assert len(h.api.requests) == 2
    assert h.sleeps == [RetryPolicy(jitter=0).backoff(1)]
    assert_each_body_carries_the_file(h.api, chat_file, multipart_parts)


def test_every_attempt_resends_the_whole_file(
    harness: Any, chat_file: Path, multipart_parts: Any
) -> None:
    h = harness(httpx.Response(500), httpx.Response(502), httpx.Response(503))
    h.client.upload(chat_file)
    assert len(h.api.requests) == 4
    assert_each_body_carries_the_file(h.api, chat_file, multipart_parts)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.PoolTimeout("no free connection"),
    ],
    ids=["connect-error", "connect-timeout", "pool-timeout"],
)
def test_connect_failures_are_retried(error: Exception, harness: Any, chat_file: Path) -> None:
    h = harness(error, error)
    h.client.upload(chat_file)
    assert len(h.api.requests) == 3
    assert len(h.sleeps) == 2


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["read-timeout", "remote-protocol-error"],
)
def test_lost_response_after_full_body_is_retried(
    error: Exception, harness: Any, chat_file: Path, multipart_parts: Any
) -> None:
    # The fake reads the whole body before raising: the server had it all, and then
    # the answer was lost.
    h = harness(error)
    h.client.upload(chat_file)
    assert len(h.api.requests) == 2
    assert_each_body_carries_the_file(h.api, chat_file, multipart_parts)


def test_backoff_doubles_up_to_the_cap(harness: Any, chat_file: Path) -> None:
    policy = RetryPolicy(max_attempts=6, initial_backoff=1, max_backoff=3, jitter=0)
    h = harness(*[httpx.Response(503)] * 5, retry=policy)
    h.client.upload(chat_file)
    assert h.sleeps == [1, 2, 3, 3, 3]


def test_jitter_only_shortens_the_backoff(harness: Any, chat_file: Path) -> None:
    policy = RetryPolicy(max_attempts=30, initial_backoff=4, max_backoff=4, jitter=0.5)
    h = harness(*[httpx.Response(502)] * 29, retry=policy)
    h.client.upload(chat_file)
    assert len(h.sleeps) == 29
    assert all(2.0 <= s <= 4.0 for s in h.sleeps)
    assert len(set(h.sleeps)) > 1


def test_gives_up_after_max_attempts_with_the_status_class(harness: Any, chat_file: Path) -> None:
    h = harness(*[httpx.Response(503, json={"detail": "overloaded"})] * 3)
    with pytest.raises(ServerError) as info:
        h.client.upload(chat_file, retry=RetryPolicy(max_attempts=3, jitter=0))
    assert info.value.status == 503
    assert info.value.server_message == "overloaded"
    assert "3 attempts" in str(info.value)
    assert len(h.api.requests) == 3


def test_429_after_the_retries_is_a_rate_limit_error(harness: Any, chat_file: Path) -> None:
    h = harness(*[httpx.Response(429)] * 2)
    with pytest.raises(RateLimitError):
        h.client.upload(chat_file, retry=RetryPolicy(max_attempts=2, jitter=0))


def test_connection_errors_are_wrapped_once_from_the_original(
    harness: Any, chat_file: Path
) -> None:
    original = httpx.ConnectError("[Errno 111] Connection refused")
    h = harness(*[original] * 2)
    with pytest.raises(TransportError) as info:
        h.client.upload(chat_file, retry=RetryPolicy(max_attempts=2, jitter=0))
    assert info.value.__cause__ is original
    assert info.value.status is None
    assert "Connection refused" in str(info.value)


def test_per_call_policy_overrides_the_clients(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(503), retry=RetryPolicy(max_attempts=5))
    with pytest.raises(ServerError):
        h.client.upload(chat_file, retry=RetryPolicy.never())
    assert len(h.api.requests) == 1
    assert h.sleeps == []


def test_reads_are_retried_like_uploads(harness: Any, file_object: Any) -> None:
    obj = file_object()
    h = harness(httpx.Response(504), httpx.Response(200, json=obj))
    assert h.client.retrieve(obj["id"]).id == obj["id"]
    assert len(h.api.requests) == 2


# ----------------------------------------------------------------- Retry-After


def test_retry_after_seconds_replace_the_backoff(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(429, headers={"Retry-After": "2"}))
    h.client.upload(chat_file)
    assert h.sleeps == [2.0]


def test_retry_after_http_date_is_honoured(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(503, headers={"Retry-After": "Fri, 29 Sep 2023 14:47:17 GMT"}))
    h.client.upload(chat_file)
    assert h.sleeps == [20.0]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-10",
        "inf",
        "nan",
        "1e3",
        "Zun, 32 Foo 2023 99:99:99 GMT",  # unreadable date
        "Fri, 29 Sep 100000 16:26:57 GMT",  # a year Python cannot hold
        "Fri, 29 Sep 2023 14:00:00 GMT",  # in the past
    ],
)
def test_malformed_retry_after_falls_back_to_backoff(
    value: str, harness: Any, chat_file: Path
) -> None:
    h = harness(httpx.Response(429, headers={"Retry-After": value}))
    h.client.upload(chat_file)
    assert h.sleeps == [RetryPolicy(jitter=0).backoff(1)]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("86400", "24.0 h"),
        ("121", "121 s"),
        ("9" * 35, "more than a century"),
        ("Wed, 29 Sep 2123 14:46:57 GMT", "more than a century"),
    ],
)
def test_retry_after_above_the_cap_fails_at_once(
    value: str, said: str, harness: Any, chat_file: Path
) -> None:
    h = harness(httpx.Response(429, headers={"Retry-After": value}))
    with pytest.raises(RateLimitError) as info:
        h.client.upload(chat_file)
    assert h.sleeps == []
    assert len(h.api.requests) == 1
    assert f"asked to wait {said}" in str(info.value)


def test_retry_after_at_the_cap_is_waited(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(503, headers={"Retry-After": "120"}))
    h.client.upload(chat_file)
    assert h.sleeps == [120.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20", 20.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Fri, 29 Sep 2023 14:47:17 GMT", 20.0),
        ("Fri, 29 Sep 2023 14:47:17", 20.0),  # no zone: read as GMT
        (None, None),
        ("", None),
        ("-10", None),
        ("inf", None),
        ("nan", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


# ----------------------------------------------------------------- permanent errors


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, APIError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (413, PayloadTooLargeError),
        (422, ServerValidationError),
    ],
)
def test_client_errors_are_sent_exactly_once(
    status: int, error_class: type[APIError], harness: Any, chat_file: Path
) -> None:
    h = harness(*[httpx.Response(status, json={"detail": "no"})] * 3)
    with pytest.raises(error_class) as info:
        h.client.upload(chat_file)
    assert len(h.api.requests) == 1
    assert h.sleeps == []
    assert info.value.status == status
    assert info.value.server_message == "no"


def test_401_says_to_check_the_key_without_showing_it(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(401, json={"detail": "Unauthorized"}), api_key="sk-secret-123")
    with pytest.raises(AuthenticationError) as info:
        h.client.upload(chat_file)
    assert "MISTRAL_API_KEY" in str(info.value)
    assert "sk-secret-123" not in str(info.value)


def test_413_names_ftprep_split(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(413, text="<html>Request Entity Too Large</html>"))
    with pytest.raises(PayloadTooLargeError) as info:
        h.client.upload(chat_file)
    assert "ftprep split" in str(info.value)
    assert str(chat_file) in str(info.value)
    assert info.value.server_message == "<html>Request Entity Too Large</html>"


def test_422_keeps_the_servers_line_numbers(harness: Any, chat_file: Path) -> None:
    body = {
        "detail": "Invalid file format.",
        "description": "Found 2 errors in this file. ",
        "errors": [
            {"message": "line contains invalid json", "line_number": 1},
            {"message": "missing messages", "line_number": 7},
        ],
    }
    h = harness(httpx.Response(422, json=body))
    with pytest.raises(ServerValidationError) as info:
        h.client.upload(chat_file)
    assert [(e.line_number, e.message) for e in info.value.line_errors] == [
        (1, "line contains invalid json"),
        (7, "missing messages"),
    ]
    assert "line 7: missing messages" in str(info.value)
    assert "Invalid file format." in (info.value.server_message or "")


def test_detail_list_and_message_are_read(harness: Any, file_object: Any) -> None:
    body = {
        "detail": [{"loc": ["query", "page_size"], "msg": "too big", "type": "range"}],
        "message": "see docs",
    }
    h = harness(httpx.Response(422, json=body))
    with pytest.raises(ServerValidationError) as info:
        h.client.retrieve("x")
    assert info.value.server_message == "query.page_size: too big see docs"


def test_long_server_messages_are_trimmed(harness: Any) -> None:
    h = harness(httpx.Response(400, json={"detail": "x" * 100_000}))
    with pytest.raises(APIError) as info:
        h.client.retrieve("x")
    assert len(info.value.server_message or "") < 600
    assert len(str(info.value)) < 1000


def test_success_without_a_file_object_is_an_error(harness: Any, chat_file: Path) -> None:
    h = harness(httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(APIError, match="not JSON"):
        h.client.upload(chat_file)


# ----------------------------------------------------------------- ambiguous uploads


def test_ambiguous_failure_lets_the_caller_adopt_an_existing_file(
    harness: Any, chat_file: Path
) -> None:
    seen: list[AmbiguousUpload] = []
    existing = FileObject(id="already-there", filename="train.jsonl", bytes=1)

    def reconcile(failure: AmbiguousUpload) -> FileObject | None:
        seen.append(failure)
        return existing

    h = harness(httpx.ReadTimeout("lost"))
    assert h.client.upload(chat_file, on_ambiguous_failure=reconcile) is existing
    assert len(h.api.requests) == 1
    assert seen[0].filename == "train.jsonl"
    assert seen[0].bytes == chat_file.stat().st_size
    assert seen[0].attempt == 1
    assert isinstance(seen[0].error, TransportError)


def test_ambiguous_hook_returning_none_lets_the_retry_go_on(harness: Any, chat_file: Path) -> None:
    calls: list[int] = []

    def reconcile(failure: AmbiguousUpload) -> FileObject | None:
        calls.append(failure.error.status or 0)
        return None

    h = harness(httpx.Response(500), httpx.Response(502))
    h.client.upload(chat_file, on_ambiguous_failure=reconcile)
    assert calls == [500, 502]
    assert len(h.api.requests) == 3


@pytest.mark.parametrize(
    "step",
    [httpx.Response(429), httpx.Response(503), httpx.ConnectError("refused")],
    ids=["429", "503", "connect-error"],
)
def test_unambiguous_failures_do_not_call_the_hook(
    step: Any, harness: Any, chat_file: Path
) -> None:
    calls: list[AmbiguousUpload] = []
    h = harness(step)
    h.client.upload(chat_file, on_ambiguous_failure=lambda f: calls.append(f) or None)
    assert calls == []
    assert len(h.api.requests) == 2
