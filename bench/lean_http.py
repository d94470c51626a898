"""A lean HTTP/1.1 client for load generation: keep-alive connections over asyncio streams,
one request at a time per connection, ``Content-Length`` bodies only.

The load generator shares the machine's cores with the server it measures; a general client
(httpx) spends a millisecond or more of CPU per request, enough to make the harness the
bottleneck at a thousand requests a second on two cores. This one spends a few tens of
microseconds, so the figures describe the server. It speaks just what the benchmarks send
and the services answer (JSON bodies with a length); anything else is an error.
"""

from __future__ import annotations

import asyncio
from collections import deque


class LeanHttpError(Exception):
    pass


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, headers = raw.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise LeanHttpError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        length = None
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"transfer-encoding":
                raise LeanHttpError("chunked answers are not supported")
        if length is None:
            raise LeanHttpError("an answer without Content-Length")
        return int(parts[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """POSTs to one server over up to ``connections`` keep-alive connections."""

    def __init__(self, host: str, port: int, headers: dict[str, str], connections: int) -> None:
        self._host, self._port = host, port
        fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._fixed = f"Host: {host}:{port}\r\n{fixed}".encode()
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(connections)  # requests in flight = connections in use

    async def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        head = b"".join(
            (
                b"POST ",
                path.encode(),
                b" HTTP/1.1\r\n",
                self._fixed,
                b"Content-Type: ",
                content_type.encode(),
                b"\r\nContent-Length: ",
            )
        )
        async with self._slots:
            if self._idle:
                conn = self._idle.popleft()
            else:
                conn = _Connection(*await asyncio.open_connection(self._host, self._port))
            try:
                answer = await conn.request(head, body)
            except BaseException:
                conn.close()
                raise
            self._idle.append(conn)
            return answer

    async def aclose(self) -> None:
        while self._idle:
            self._idle.popleft().close()
