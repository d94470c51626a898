"""Reading a complaint e-mail (COMP-CHANNELS): a raw RFC 822 message in, what to file out.

The subject form is ``关于xxxx银行催收投诉 - [name] - [phone]``: the bank part varies;
the name and the phone follow the two `` - `` separators. Full-width and typographic
dashes (``－ — – ―``), full-width spaces and extra spaces are tolerated, brackets around
the name or the phone (``[ ] 【 】``) are dropped, and encoded words
(``=?UTF-8?B?...?=``) are decoded by the ``email`` package (``policy.default``).

Nothing here raises on bad input: a message that cannot be read (no subject in the
form, no sender, no text, not even valid headers) still gives a :class:`ParsedMail`,
with ``triage_reasons`` saying what is wrong, so the complaint is filed for triage and
never dropped.

Evidence: the raw message is recorded by its SHA-256 and size (the mail gateway's
archive holds the bytes; the hash proves which message was filed), each attachment by
its file name, content type, size and SHA-256. The text of the complaint is kept
(encrypted) as the ticket's content.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Final

SUBJECT_FORM: Final = "关于xxxx银行催收投诉 - [name] - [phone]"
MAX_CONTENT_CHARS: Final = 8000
MAX_NAME_CHARS: Final = 100

_DASHES = re.compile(r"[\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]")
_SUBJECT = re.compile(r"^\s*(?P<head>关于.*?投诉)\s*-\s*(?P<name>[^-]+?)\s*-\s*(?P<phone>.+?)\s*$")
_BRACKETS = "[]【】〔〕()（）<>《》 "
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Attachment:
    name: str | None
    content_type: str
    size_bytes: int
    sha256: str


@dataclass
class ParsedMail:
    raw_sha256: str
    raw_size: int
    message_id: str  # the Message-ID, else ``sha256:<raw hash>`` (dedupe of an identical resend)
    subject: str | None = None
    name: str | None = None
    phone: str | None = None
    sender: str | None = None
    content: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    triage_reasons: list[str] = field(default_factory=list)


def normalise_subject(subject: str) -> str:
    text = _DASHES.sub("-", subject).replace("\u3000", " ")
    return re.sub(r"\s+", " ", text).strip()


def parse_subject(subject: str) -> tuple[str, str] | None:
    """``(name, phone)`` from a subject in the COMP-CHANNELS form, else None."""
    m = _SUBJECT.match(normalise_subject(subject))
    if m is None:
        return None
    name = m["name"].strip(_BRACKETS)
    phone = m["phone"].strip(_BRACKETS)
    digits = re.sub(r"[^\d]", "", phone)
    if not name or not re.fullmatch(r"\+?[\d\s()-]+", phone) or not 7 <= len(digits) <= 15:
        return None
    return name[:MAX_NAME_CHARS], ("+" if phone.startswith("+") else "") + digits


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a header the default policy cannot parse
        return None
    if value is None:
        return None
    # control characters (a NUL) cannot be stored and mean nothing in a header: dropped, so
    # the mail is still filed for triage (COMP-CHANNELS)
    text = _CONTROL.sub("", str(value)).strip()
    return text or None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _sender(msg: Message) -> str | None:
    raw = _header(msg, "From")
    if raw is None:
        return None
    for _, addr in getaddresses([raw]):
        if "@" in addr:
            return addr.strip()[:200]
    return None


def _text_of(part: Message) -> str:
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except Exception:  # unknown charset, broken transfer encoding
        return ""
    return ""


def strip_html(markup: str) -> str:
    text = re.sub(r"<br\s*/?>|</p\s*>|</div\s*>", "\n", markup, flags=re.IGNORECASE)
    text = html.unescape(_TAGS.sub("", text))
    return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()


def _body_and_attachments(msg: Message) -> tuple[str, list[Attachment]]:
    plain: list[str] = []
    markup: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        ctype = part.get_content_type()
        if disposition == "attachment" or (
            part.get_filename() and ctype not in ("text/plain", "text/html")
        ):
            data = part.get_payload(decode=True)
            blob = data if isinstance(data, bytes) else b""
            attachments.append(
                Attachment(
                    name=part.get_filename(),
                    content_type=ctype,
                    size_bytes=len(blob),
                    sha256=hashlib.sha256(blob).hexdigest(),
                )
            )
        elif ctype == "text/plain":
            plain.append(_text_of(part))
        elif ctype == "text/html":
            markup.append(_text_of(part))
    text = "\n".join(t.strip() for t in plain if t.strip())
    if not text:
        text = "\n".join(strip_html(m) for m in markup if m.strip())
    return text.strip(), attachments


def parse_complaint_mail(raw: bytes) -> ParsedMail:
    """Read ``raw`` (never raises): what to file, and why it needs triage if it does."""
    digest = hashlib.sha256(raw).hexdigest()
    parsed = ParsedMail(raw_sha256=digest, raw_size=len(raw), message_id=f"sha256:{digest}")
    reasons = parsed.triage_reasons
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        msg = None
    if (
        msg is None
        or not msg.keys()
        or any(
            type(d).__name__ in ("MissingHeaderBodySeparatorDefect", "InvalidHeaderDefect")
            for d in msg.defects
        )
    ):
        reasons.append("not a valid RFC 822 message")
        if msg is None or not msg.keys():
            parsed.content = raw.decode("utf-8", errors="replace").strip()[:MAX_CONTENT_CHARS]
            return parsed

    message_id = _header(msg, "Message-ID")
    if message_id:
        message_id = re.sub(r"\s+", "", message_id)
        parsed.message_id = (
            message_id
            if len(message_id) <= 255
            else "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
        )

    parsed.subject = _header(msg, "Subject")
    if parsed.subject is None:
        reasons.append("no subject")
    else:
        found = parse_subject(parsed.subject)
        if found is None:
            reasons.append(f"subject not in the form {SUBJECT_FORM}")
        else:
            parsed.name, parsed.phone = found

    parsed.sender = _sender(msg)
    if parsed.sender is None:
        reasons.append("no sender address (From)")

    try:
        text, parsed.attachments = _body_and_attachments(msg)
    except Exception:
        text = ""
        reasons.append("the message's parts cannot be read")
    if not text:
        reasons.append("no text in the message")
        text = raw.decode("utf-8", errors="replace").strip()
    parsed.content = text[:MAX_CONTENT_CHARS]
    return parsed
