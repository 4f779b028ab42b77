"""The official mistralai SDK and ftprep's client against the same emulator, over a
real loopback socket: both do every file operation and see each other's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
mistral_client = pytest.importorskip("mistralai.client")

from ftprep.client import FilesClient  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def test_sdk_and_ftprep_share_files_on_the_emulator(
    emulator: Any, chat_file: Path, write_chat: Any, tmp_path: Path
) -> None:
    sdk = mistral_client.Mistral(api_key="sdk-key", server_url=emulator.base_url)
    with open(chat_file, "rb") as fh:
        created = sdk.files.upload(
            file={"file_name": "from-sdk.jsonl", "content": fh}, purpose="fine-tune"
        )
    assert created.filename == "from-sdk.jsonl"
    assert created.size_bytes == chat_file.stat().st_size
    assert created.sample_type == "instruct"

    other = write_chat(tmp_path / "from-ftprep.jsonl", tag="ftprep")
    with FilesClient("ftprep-key", base_url=emulator.base_url) as client:
        mine = client.upload(other)
        assert {f.filename for f in client.list()} == {"from-sdk.jsonl", "from-ftprep.jsonl"}
        assert client.retrieve(created.id).bytes == created.size_bytes

        listed = sdk.files.list()
        assert listed.total == 2
        assert {f.id for f in listed.data} == {created.id, mine.id}
        assert sdk.files.list(page=1, page_size=1).data[0].id == created.id

        got = sdk.files.retrieve(file_id=mine.id)
        assert (got.filename, got.size_bytes, got.deleted) == (
            "from-ftprep.jsonl",
            other.stat().st_size,
            False,
        )
        response = sdk.files.download(file_id=mine.id)
        try:
            assert response.read() == other.read_bytes()
        finally:
            response.close()
        assert sdk.files.get_signed_url(file_id=mine.id).url.startswith(emulator.base_url)

        assert sdk.files.delete(file_id=mine.id).deleted is True
        assert [f.id for f in client.list()] == [created.id]
        assert client.delete(created.id) is True
    assert sdk.files.list().total == 0
