"""The bulk paths of the unit of work and the field cipher give what the one-at-a-time
paths give: outbox envelopes byte for byte, tokens that decrypt, the same blind index."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from collect_common.db import (
    EventContext,
    UtcDateTime,
    outbox_rows,
    reset_event_context,
    set_event_context,
    uuid4_strings,
)
from collect_common.events import EventEnvelope
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.types import (
    CaseImported,
    CaseRecalled,
    CaseStrategyChanged,
    CaseUpdated,
)
from collect_common.security.crypto import (
    DecryptionError,
    EncryptedText,
    FieldCipher,
    Keyring,
    use_field_cipher,
)

NOW = datetime(2026, 11, 28, 2, 0, 0, 123456, tzinfo=UTC)
INDEX_KEY = bytes(range(32))


def _events() -> list[Event]:
    return [
        CaseImported(
            case_id="c-1",
            debtor_id="dbt_1",
            bank_id="bank-core",
            overdue_total=Decimal("1350.25"),
            overdue_since=date(2026, 9, 15),
            bucket="M3",
            debtor_timezone="Asia/Shanghai",
        ),
        CaseStrategyChanged(
            case_id="c-1",
            debtor_id="dbt_1",
            previous_track=None,
            track="standard",
            channels=["sms", "call"],
            rule_name=None,
            table_version="1",
            reason='CASE-STRATEGY: "quoted" \\ back-slashed, 中文, tab\there',
        ),
        CaseUpdated(case_id="c-2", debtor_id="dbt_2", changed_fields=["phones"], updated_at=NOW),
        CaseRecalled(case_id="c-3", debtor_id="dbt_3", recalled_at=NOW),
    ]


def _reference(row: dict[str, object], event: Event, causation: str | None) -> bytes:
    """The envelope ``wrap`` builds for the same event, ids and time."""
    sent = EventEnvelope.from_bytes(bytes(row["payload"]))  # type: ignore[arg-type]
    return wrap(
        event,
        source="/case-svc",
        time=NOW,
        correlation_id=sent.correlationid,
        causation_id=causation,
        event_id=str(row["event_id"]),
    ).to_bytes()


@pytest.mark.parametrize("causation", [None, "evt-upstream-1"])
def test_outbox_envelopes_are_byte_for_byte_what_wrap_gives(causation: str | None) -> None:
    events = _events()
    token = set_event_context(EventContext(correlation_id="corr-1", causation_id=causation))
    try:
        rows = outbox_rows(events, source="/case-svc", time=NOW)
    finally:
        reset_event_context(token)
    assert len(rows) == len(events)
    for row, event in zip(rows, events, strict=True):
        assert row["payload"] == _reference(row, event, causation)
        assert (row["topic"], row["key"], row["event_type"]) == (
            event.topic,
            event.partition_key,
            event.type_name,
        )
        assert (row["created_at"], row["published_at"]) == (NOW, None)
        envelope = EventEnvelope.from_bytes(row["payload"])
        assert (envelope.correlationid, envelope.causationid) == ("corr-1", causation)
    assert len({r["event_id"] for r in rows}) == len(rows)


def test_without_a_context_every_event_gets_its_own_correlation_id() -> None:
    rows = outbox_rows(_events(), source="/case-svc", time=NOW)
    correlations = [EventEnvelope.from_bytes(r["payload"]).correlationid for r in rows]
    assert len(set(correlations)) == len(rows)
    assert all(uuid.UUID(str(c)).version == 4 for c in correlations)


def test_an_event_the_envelope_refuses_is_still_refused() -> None:
    too_long = CaseRecalled(case_id="c" * 201, debtor_id="d", recalled_at=NOW)
    with pytest.raises(ValidationError):
        outbox_rows([_events()[0], too_long], source="/case-svc", time=NOW)
    with pytest.raises(ValidationError):  # an instant without its zone
        outbox_rows(_events(), source="/case-svc", time=NOW.replace(tzinfo=None))


def test_envelope_time_keeps_a_non_utc_offset_as_wrap_does() -> None:
    shanghai = NOW.astimezone(timezone(timedelta(hours=8)))
    event = _events()[0]
    row = outbox_rows([event], source="/case-svc", time=shanghai)[0]
    sent = EventEnvelope.from_bytes(row["payload"])
    assert (
        row["payload"]
        == wrap(
            event,
            source="/case-svc",
            time=shanghai,
            correlation_id=sent.correlationid,
            event_id=row["event_id"],
        ).to_bytes()
    )


def test_uuid4_strings_are_distinct_version_4_uuids() -> None:
    ids = uuid4_strings(2000)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    assert uuid4_strings(0) == []


# --- the field cipher ---------------------------------------------------------------------


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.generate("k1"), index_key=INDEX_KEY)


def test_encrypt_many_gives_tokens_that_decrypt_with_their_column_only(
    cipher: FieldCipher,
) -> None:
    values = ["11010519491231002X", None, "北京市朝阳区建国路88号", "", "11010519491231002X"]
    tokens = cipher.encrypt_many(values, aad="cases.national_id")
    assert tokens[1] is None
    assert [cipher.decrypt(t, aad="cases.national_id") if t else t for t in tokens] == [
        values[0],
        None,
        values[2],
        cipher.decrypt(str(tokens[3]), aad="cases.national_id"),
        values[4],
    ]
    assert cipher.decrypt(str(tokens[3]), aad="cases.national_id") == ""
    assert tokens[0] != tokens[4]  # a fresh nonce for every value
    assert len({str(t).split(".")[2][:16] for t in tokens if t is not None}) == 4
    with pytest.raises(DecryptionError):
        cipher.decrypt(str(tokens[0]), aad="cases.address")
    assert cipher.encrypt_many([], aad="x") == []


def test_encrypted_text_bulk_binding_encrypts_like_one_at_a_time(cipher: FieldCipher) -> None:
    column = EncryptedText(aad="cases.name")
    with use_field_cipher(cipher):
        bulk = column.process_bind_many(["张三", None])
        single = column.process_bind_param("张三", None)  # type: ignore[arg-type]
        assert bulk[1] is None
        assert column.process_result_value(bulk[0], None) == "张三"  # type: ignore[arg-type]
        assert column.process_result_value(single, None) == "张三"  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            column.process_bind_many([123])  # type: ignore[list-item]


def test_blind_index_is_the_documented_keyed_hash(cipher: FieldCipher) -> None:
    subkey = hmac.new(INDEX_KEY, b"blind-index\x00debtor", hashlib.sha256).digest()
    value = "１１０１０５１９４９１２３１００２X "  # full-width digits, trailing space
    expected = hmac.new(
        subkey, unicodedata.normalize("NFKC", value).strip().encode(), hashlib.sha256
    ).hexdigest()
    assert cipher.blind_index(value, purpose="debtor") == expected
    assert cipher.blind_index(value, purpose="debtor") == expected  # the kept subkey
    assert cipher.blind_index(value, purpose="national_id") != expected
    with pytest.raises(ValueError, match="purpose"):
        cipher.blind_index(value, purpose="")


def test_utc_datetime_bulk_binding_converts_each_instant_to_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2026, 11, 28, 10, 0, tzinfo=shanghai)
    other = datetime(2026, 11, 28, 11, 0, tzinfo=shanghai)
    out = UtcDateTime().process_bind_many([local, local, None, other, local])
    assert out == [
        datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
        None,
        datetime(2026, 11, 28, 3, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
    ]
    assert all(v is None or v.tzinfo == UTC for v in out)
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_many([local, datetime(2026, 11, 28, 2, 0)])
