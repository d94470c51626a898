"""Sending SMS through a provider: a file sink (the local default) or an HTTP provider.

contact-svc holds no phone numbers (SEC-PII: phones stay in case-svc and no case event
carries them), so the recipient is the debtor id: the provider (the agency's SMS gateway)
resolves it to the debtor's number. The text goes to the provider only; contact-svc
stores its SHA-256.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx


class SmsSendFailed(RuntimeError):
    pass


class SmsProvider(Protocol):
    name: str

    async def send(self, recipient: str, text: str, *, reference: str) -> str:
        """Hand one SMS to the provider; returns the provider's message id."""
        ...


class FileSink:
    """Appends each SMS as one JSON line to ``path`` (local development and tests)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, recipient: str, text: str, *, reference: str) -> str:
        provider_id = f"file-{uuid.uuid4()}"
        line = json.dumps(
            {
                "provider_id": provider_id,
                "reference": reference,
                "recipient": recipient,
                "text": text,
                "written_at": datetime.now().astimezone().isoformat(),
            },
            ensure_ascii=False,
        )
        await asyncio.to_thread(self._append, line)
        return provider_id

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


class HttpProvider:
    """POSTs ``{"recipient_ref", "text", "reference"}`` as JSON to the gateway's URL with a
    bearer token; the answer's ``id`` is the provider id. ``reference`` (our message id)
    lets the gateway drop a retried request."""

    name = "http"

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.transport = transport  # tests: an httpx.MockTransport

    async def send(self, recipient: str, text: str, *, reference: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": reference}
        payload = {"recipient_ref": recipient, "text": text, "reference": reference}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                response = await client.post(self.url, json=payload, headers=headers)
            response.raise_for_status()
            provider_id = response.json()["id"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise SmsSendFailed(f"SMS provider refused or failed: {exc}") from None
        return str(provider_id)
