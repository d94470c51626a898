"""The SMS provider adapters: the file sink and the HTTP gateway client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from contact_svc.adapters.sms import FileSink, HttpProvider, SmsSendFailed
from contact_svc.bootstrap import sms_provider
from contact_svc.settings import Settings


async def test_the_file_sink_appends_one_json_line_per_sms(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "out" / "sms.jsonl")
    first = await sink.send("d-1", "text one", reference="m-1")
    await sink.send("d-2", "text two", reference="m-2")
    lines = [json.loads(x) for x in sink.path.read_text().splitlines()]
    assert [x["text"] for x in lines] == ["text one", "text two"]
    assert lines[0]["provider_id"] == first and lines[0]["recipient"] == "d-1"


async def test_the_http_provider_posts_with_its_token_and_returns_the_gateway_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "gw-42"})

    provider = HttpProvider(
        "https://sms.example/send", "tok", transport=httpx.MockTransport(handler)
    )
    assert await provider.send("d-1", "hello", reference="m-1") == "gw-42"
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert seen[0].headers["Idempotency-Key"] == "m-1"
    assert json.loads(seen[0].content) == {
        "recipient_ref": "d-1",
        "text": "hello",
        "reference": "m-1",
    }

    failing = HttpProvider(
        "https://sms.example/send",
        "tok",
        transport=httpx.MockTransport(lambda r: httpx.Response(503)),
    )
    with pytest.raises(SmsSendFailed):
        await failing.send("d-1", "hello", reference="m-2")


def test_the_provider_follows_the_settings(tmp_path: Path) -> None:
    assert isinstance(sms_provider(Settings(sms_file_path=tmp_path / "x")), FileSink)
    http = sms_provider(Settings(sms_provider="http", sms_http_url="https://sms.example/send"))
    assert isinstance(http, HttpProvider)
    with pytest.raises(ValueError, match="sms_http_url"):
        sms_provider(Settings(sms_provider="http"))
