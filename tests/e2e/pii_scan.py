"""Where personal data could leak out of the running platform, and a scan of all of it (SEC-PII).

After the flows, every place the platform writes to is read back: each service process's
log file, every message the platform put on the four topics and their dead-letter topics,
and every text column of every table of the four databases, except the ``EncryptedText``
columns (those must hold ciphertext tokens, which is checked instead). The scan looks for
the exact national IDs, phone numbers and addresses the bank sent (read back from
case-svc's encrypted columns, so every account the flows imported is covered), and for
anything shaped like an 18-character GB 11643 national ID or a mainland mobile number.

UUIDs and long hex strings (event ids, hashes, signatures) are blanked before the shape
patterns run, as the log masker does, so a digit run inside them is not taken for a phone.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import MetaData, text

from collect_common.bus.topics import dead_letter_topic
from collect_common.db import create_engine
from collect_common.security.crypto import EncryptedText, FieldCipher
from collect_common.settings import DEV_FIELD_KEYS, DEV_INDEX_KEY
from collect_common.testing.kafka import platform_partitions
from collect_common.testing.processes import ServiceProcess

ID18 = re.compile(
    r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?!\d)"
)
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_NOT_PERSONAL = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])"
)
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")
CIPHERTEXT = re.compile(r"v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Leak:
    where: str
    what: str
    context: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} in ...{self.context}..."


class Scanner:
    """Finds the known values and the ID and mobile shapes in text."""

    def __init__(self, known: Iterable[str]) -> None:
        values = sorted({v for v in known if v and len(v) >= 6}, key=len, reverse=True)
        self.known = len(values)
        self._known = re.compile("|".join(re.escape(v) for v in values)) if values else None
        self.leaks: list[Leak] = []
        self.scanned = 0

    def scan(self, where: str, content: str) -> None:
        self.scanned += 1
        found: list[tuple[str, re.Match[str]]] = []
        if self._known is not None:
            found += [("a value the bank sent", m) for m in self._known.finditer(content)]
        blanked = _NOT_PERSONAL.sub(lambda m: " " * len(m.group()), content)
        found += [("an ID-shaped number", m) for m in ID18.finditer(blanked)]
        found += [("a mobile-shaped number", m) for m in MOBILE.finditer(blanked)]
        seen: set[tuple[int, int]] = set()
        for what, m in found:
            if m.span() in seen:
                continue
            seen.add(m.span())
            start, end = m.span()
            context = content[max(0, start - 60) : end + 60].replace("\n", " ")
            self.leaks.append(Leak(where, f"{what} {m.group()!r}", context))


async def sent_personal_data(case_db_url: str) -> list[str]:
    """Read back what the bank sent: national IDs, phones and addresses of every case
    (case-svc stores them encrypted; the e2e platform runs on the development keys)."""
    cipher = FieldCipher.from_config(DEV_FIELD_KEYS, DEV_INDEX_KEY)
    engine = create_engine(case_db_url)
    values: list[str] = []
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT national_id, phones, address FROM cases"))
            ).all()
    finally:
        await engine.dispose()
    for national_id, phones, address in rows:
        values.append(cipher.decrypt(national_id, aad="cases.national_id"))
        values += json.loads(cipher.decrypt(phones, aad="cases.phones"))
        if address is not None:
            values.append(cipher.decrypt(address, aad="cases.address"))
    return values


def encrypted_columns(service: str) -> set[tuple[str, str]]:
    """(table, column) of every ``EncryptedText`` column of the service's tables."""
    importlib.import_module(f"{service}_svc.main")  # loads every table module of the app
    tables = importlib.import_module(f"{service}_svc.adapters.tables")
    metadata: MetaData = tables.metadata
    return {
        (table.name, column.name)
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, EncryptedText)
    }


async def scan_database(scanner: Scanner, service: str, url: str) -> list[str]:
    """Scan every text column but the encrypted ones; return the encrypted columns that
    hold something other than ciphertext tokens (each a problem too)."""
    encrypted = encrypted_columns(service)
    engine = create_engine(url)
    not_ciphertext: list[str] = []
    try:
        async with engine.connect() as conn:
            columns = (
                await conn.execute(
                    text(
                        "SELECT table_name, column_name, data_type FROM information_schema.columns"
                        " WHERE table_schema = 'public' AND data_type = ANY(:types)"
                        " ORDER BY table_name, ordinal_position"
                    ),
                    {"types": list(TEXT_TYPES)},
                )
            ).all()
            for table, column, data_type in columns:
                query = text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')  # noqa: S608 (names from the catalogue)
                values = (await conn.execute(query)).scalars().all()
                where = f"{service}-svc database, {table}.{column}"
                for n, value in enumerate(values):
                    content = _as_text(value, data_type)
                    if (table, column) in encrypted:
                        if not CIPHERTEXT.fullmatch(content):
                            not_ciphertext.append(f"{where} row {n}: not a ciphertext token")
                        continue
                    scanner.scan(f"{where} (row {n} of {len(values)})", content)
    finally:
        await engine.dispose()
    return not_ciphertext


def _as_text(value: Any, data_type: str) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if data_type in ("json", "jsonb") and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def scan_logs(scanner: Scanner, procs: Iterable[ServiceProcess]) -> None:
    for proc in procs:
        lines = proc.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        for n, line in enumerate(lines, start=1):
            scanner.scan(f"{proc.log_path.name} line {n}", line)


def process_started_ms(pid: int) -> int | None:
    """When a process started (epoch milliseconds, a second early), from ``/proc``; None
    where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
    return int((boot + ticks / os.sysconf("SC_CLK_TCK") - 1) * 1000)


async def scan_topics(
    scanner: Scanner, bootstrap: str, topics: Iterable[str], since_ms: int | None
) -> int:
    """Scan every message of ``topics`` and their dead-letter topics written since
    ``since_ms`` (all of them when None): key, value and headers. Returns the count."""
    names = [t for topic in topics for t in (topic, dead_letter_topic(topic))]
    parts = platform_partitions(*names)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    count = 0
    try:
        reader.assign(parts)
        ends = await reader.end_offsets(parts)
        starts: dict[TopicPartition, int] = dict.fromkeys(parts, 0)
        if since_ms is not None:
            found = await reader.offsets_for_times(dict.fromkeys(parts, since_ms))
            starts = {tp: ends[tp] if at is None else at.offset for tp, at in found.items()}
        for tp in parts:
            reader.seek(tp, starts[tp])
        pending = {tp for tp in parts if starts[tp] < ends[tp]}
        while pending:
            batch = await reader.getmany(*pending, timeout_ms=1000)
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset >= ends[tp]:
                        continue
                    count += 1
                    where = f"topic {tp.topic} partition {tp.partition} offset {m.offset}"
                    parts_of = [m.key or b"", m.value or b""]
                    parts_of += [name.encode() + b"=" + (v or b"") for name, v in m.headers]
                    content = "\n".join(p.decode("utf-8", errors="replace") for p in parts_of)
                    scanner.scan(where, content)
            pending = {tp for tp in pending if await reader.position(tp) < ends[tp]}
    finally:
        await reader.stop()
    return count
