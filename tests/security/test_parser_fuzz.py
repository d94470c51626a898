"""Property-based fuzzing of the parsers that face the outside (hypothesis, bounded).

- NDJSON intake (case-svc): the line splitter keeps every line, in order, and never more
  than the line limit of one; the line parser answers an account, a rejection naming
  ``line`` or a blank for any bytes, nesting included.
- The complaint e-mail parser (complaint-svc): any bytes give a ``ParsedMail`` (it has no
  error of its own: it never raises); what cannot be read is filed for triage, with a
  reason, never dropped.
- Webhook verification (``collect_common.security.webhooks``): any headers and body are
  refused with ``WebhookRejected`` and a documented code, or verified when (and only when)
  correctly signed and fresh.
- Credentials (``collect_common.security.auth``): any API key or bearer token is unknown
  (None) or ``AuthenticationError`` with a documented reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from case_svc.entrypoints.api.accounts import RejectedLine, _Line, _lines, _parse
from collect_common.clock import FrozenClock
from collect_common.security.auth import ApiKeyRegistry, AuthenticationError, TokenService
from collect_common.security.webhooks import (
    HEADER_DELIVERY_ID,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    VerifiedDelivery,
    WebhookRejected,
    WebhookVerifier,
    sign,
)
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from complaint_svc.domain.mail import MAX_CONTENT_CHARS, ParsedMail, parse_complaint_mail

# Bounded and reproducible: the same examples on every run, none stored on disk.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SECRET = b"fuzz-webhook-secret-0123456789abcdef"
REJECTION_CODES = {"missing-header", "unknown-key", "bad-signature", "stale-timestamp", "replayed"}
AUTH_REASONS = {
    "malformed",
    "bad-signature",
    "expired",
    "not-yet-valid",
    "wrong-issuer",
    "unknown-role",
}

# --- NDJSON intake ------------------------------------------------------------------------


async def _split(chunks: list[bytes], max_bytes: int) -> list[_Line]:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [line async for line in _lines(stream(), max_bytes)]


@FUZZ
@given(
    chunks=st.lists(st.binary(max_size=64) | st.sampled_from([b"\n", b"\n\n", b"{}"]), max_size=30),
    max_bytes=st.integers(min_value=1, max_value=40),
)
def test_the_ndjson_splitter_keeps_every_line_in_order_and_bounds_each(
    chunks: list[bytes], max_bytes: int
) -> None:
    lines = asyncio.run(_split(chunks, max_bytes))
    body = b"".join(chunks)
    expected = body.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()  # a final newline ends the last line; it opens no new one
    assert [line.number for line in lines] == list(range(1, len(expected) + 1))
    for line, data in zip(lines, expected, strict=True):
        if len(data) > max_bytes:
            assert line.data is None  # skipped unread, never gathered
        else:
            assert line.data == data


def _nested(depth: int, inner: Any) -> bytes:
    return b'{"a":' * depth + json.dumps(inner).encode() + b"}" * depth


@FUZZ
@given(
    data=st.binary(max_size=200)
    | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.builds(_nested, st.integers(0, 30_000), st.integers() | st.text(max_size=5))
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
)
def test_the_ndjson_line_parser_answers_any_bytes(data: bytes) -> None:
    parsed = _parse(_Line(7, data), 64 * 1024)
    if parsed is None:
        assert not data.strip()
    elif isinstance(parsed, RejectedLine):
        assert parsed.line == 7
        assert [e.field for e in parsed.errors] == ["line"]
        assert all(len(e.reason) <= 200 for e in parsed.errors)
    else:
        assert isinstance(parsed, dict)


def test_a_line_nested_beyond_the_recursion_limit_is_rejected() -> None:
    parsed = _parse(_Line(1, b"[" * 100_000 + b"]" * 100_000), 1 << 20)
    assert isinstance(parsed, RejectedLine)
    assert parsed.errors[0].reason == "JSON nested too deeply"


# --- the complaint e-mail parser -----------------------------------------------------------

_header_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
_subjects = st.one_of(
    _header_text,
    st.builds(
        lambda bank, name, phone, dash: f"关于{bank}银行催收投诉 {dash} {name} {dash} {phone}",
        st.text(max_size=8),
        _header_text,
        st.from_regex(r"\+?[0-9 ()-]{5,20}", fullmatch=True),
        st.sampled_from(["-", "－", "—", "–", "―"]),
    ),
    st.just("=?UTF-8?B?5YWz5LqO?= =?bogus?Q?=ZZ?="),
)


def _message(
    subject: str | None,
    sender: str | None,
    message_id: str | None,
    extra: list[tuple[str, str]],
    body: bytes,
    crlf: bool,
) -> bytes:
    lines = []
    if sender is not None:
        lines.append(f"From: {sender}")
    if subject is not None:
        lines.append(f"Subject: {subject}")
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{name}: {value}" for name, value in extra]
    newline = "\r\n" if crlf else "\n"
    head = newline.join(lines).encode("utf-8", "surrogateescape")
    return head + (newline * 2).encode() + body


_messages = st.builds(
    _message,
    st.none() | _subjects,
    st.none() | _header_text | st.emails().map(lambda a: f"张三 <{a}>"),
    st.none() | _header_text,
    st.lists(
        st.tuples(
            st.sampled_from(
                ["Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Date", "To"]
            ),
            _header_text
            | st.sampled_from(
                [
                    "multipart/mixed; boundary=xyz",
                    "text/html; charset=gb2312",
                    "text/plain; charset=no-such-charset",
                    "base64",
                    "quoted-printable",
                ]
            ),
        ),
        max_size=4,
    ),
    st.binary(max_size=300)
    | st.just(b"--xyz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xyz--\r\n")
    | st.just(b"--xyz\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF\r\n"),
    st.booleans(),
)


def _check_mail(raw: bytes, parsed: ParsedMail) -> None:
    assert isinstance(parsed, ParsedMail)
    assert parsed.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert parsed.raw_size == len(raw)
    assert parsed.message_id and len(parsed.message_id) <= 255
    assert not any(c.isspace() for c in parsed.message_id)
    assert len(parsed.content) <= MAX_CONTENT_CHARS
    if parsed.triage_reasons:
        return
    # filed without triage only when everything the form asks for was read
    assert parsed.name and parsed.phone and parsed.sender and parsed.content


@FUZZ
@given(raw=st.binary(max_size=600))
def test_the_mail_parser_files_any_bytes(raw: bytes) -> None:
    _check_mail(raw, parse_complaint_mail(raw))


@FUZZ
@given(raw=_messages)
def test_the_mail_parser_files_any_message_and_says_why_it_needs_triage(raw: bytes) -> None:
    parsed = parse_complaint_mail(raw)
    _check_mail(raw, parsed)
    if raw.strip():
        assert parsed.content.strip() or parsed.triage_reasons  # something to read or a reason
    if parsed.name is None:
        assert parsed.triage_reasons  # the form was not read: a person looks at it


# --- webhook verification -------------------------------------------------------------------

_header_names = st.sampled_from(
    [HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_DELIVERY_ID, HEADER_SIGNATURE, "X-Other"]
)
_header_values = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x2FF, exclude_categories=["Cs"]), max_size=80
) | st.from_regex(r"v1=[0-9a-f]{64}(,v1=[0-9a-fA-F]{0,70}){0,3}", fullmatch=True)


async def _verify(headers: dict[str, str], body: bytes) -> VerifiedDelivery:
    verifier = WebhookVerifier({"k1": SECRET}, FrozenClock(NOW))
    return await verifier.verify(headers, body)


def _rejection(
    verification: Coroutine[Any, Any, VerifiedDelivery],
    verified: list[VerifiedDelivery] | None = None,
) -> str | None:
    """The rejection code, or None when the request was verified (appended to ``verified``).
    Any exception other than ``WebhookRejected`` propagates: a crash fails the test."""
    try:
        delivery = asyncio.run(verification)
    except WebhookRejected as exc:
        return exc.code
    if verified is not None:
        verified.append(delivery)
    return None


@FUZZ
@given(
    headers=st.dictionaries(_header_names, _header_values, max_size=5),
    body=st.binary(max_size=200),
)
def test_unsigned_or_forged_webhooks_are_refused_with_a_documented_code(
    headers: dict[str, str], body: bytes
) -> None:
    code = _rejection(_verify(headers, body))
    # only a request signed with the secret can pass, and forging one is the point
    assert code in REJECTION_CODES, f"accepted unsigned headers {headers!r}"


@FUZZ
@given(
    delivery_id=st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=140),
    skew=st.integers(min_value=-(10**12), max_value=10**12)
    | st.integers(min_value=-400, max_value=400),
    body=st.binary(max_size=200),
    tamper=st.booleans(),
)
def test_signed_webhooks_are_verified_or_refused_never_a_crash(
    delivery_id: str, skew: int, body: bytes, tamper: bool
) -> None:
    timestamp = max(0, int(NOW.timestamp()) + skew)
    headers = sign(SECRET, timestamp, delivery_id or "d", body, key_id="k1")
    sent = body + b"x" if tamper else body
    verified: list[VerifiedDelivery] = []
    code = _rejection(_verify(headers, sent), verified)
    if code is not None:
        assert code in REJECTION_CODES
        return
    assert not tamper
    assert verified[0].delivery_id == (delivery_id or "d")
    assert abs(verified[0].timestamp - NOW) <= timedelta(minutes=5)


@FUZZ
@given(timestamp=st.from_regex(r"[0-9]{1,12}", fullmatch=True), body=st.binary(max_size=20))
def test_a_correctly_signed_webhook_from_any_time_is_refused_as_stale_not_a_crash(
    timestamp: str, body: bytes
) -> None:
    headers = sign(SECRET, int(timestamp), "dlv-1", body, key_id="k1")
    code = _rejection(_verify(headers, body))
    if code is None:
        assert abs(int(timestamp) - NOW.timestamp()) <= 300
    else:
        assert code == "stale-timestamp"


# --- credentials ------------------------------------------------------------------------------

_tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", FrozenClock(NOW))
_registry = ApiKeyRegistry.parse(
    ";".join(
        f"{subject}:{roles}:{hashlib.sha256(key.encode()).hexdigest()}"
        for subject, (roles, key) in DEV_API_KEYS.items()
    )
)


@FUZZ
@given(
    credential=st.text(max_size=300)
    | st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.from_regex(r"[A-Za-z0-9_-]{0,60}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_-]{0,80}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_-]{0,43}", fullmatch=True),
    )
)
def test_any_bearer_token_or_api_key_is_refused_with_a_documented_reason(
    credential: str,
) -> None:
    assert _registry.authenticate(credential) is None
    reason = None
    try:
        _tokens.verify(credential)
    except AuthenticationError as exc:
        reason = exc.reason
    assert reason in AUTH_REASONS, f"accepted {credential!r}"
