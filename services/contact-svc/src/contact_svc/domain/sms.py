"""SMS templates (SMS-TEMPLATE): placeholders, the required content, rendering.

Pure functions. A template body is text with ``{placeholder}`` fields; every SMS must
tell the debtor the overdue amount, the repayment deadline, how to pay and how to reach
the agency, so each of those placeholders is required and no other is accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from string import Formatter

SMS_TEMPLATE = "SMS-TEMPLATE"

# rule: SMS-TEMPLATE (required content: overdue amount, deadline, how to pay, agency contact)
REQUIRED_PLACEHOLDERS: tuple[str, ...] = (
    "overdue_amount",
    "deadline",
    "payment_method",
    "agency_contact",
)
ALLOWED_PLACEHOLDERS: frozenset[str] = frozenset(REQUIRED_PLACEHOLDERS)
MAX_RENDERED_CHARS = 500  # a few concatenated SMS segments at most
MAX_VALUE_CHARS = 120


class TemplateInvalid(ValueError):
    """A template body or the values to render it break SMS-TEMPLATE; ``field`` names what."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def placeholders(body: str, rule: str = SMS_TEMPLATE) -> list[str]:
    """The placeholder names of ``body`` in order; malformed braces, positional fields,
    attribute/index access, conversions and format specs are refused (naming ``rule``)."""
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(body))
    except ValueError as exc:
        raise TemplateInvalid("body", f"{rule}: malformed placeholder: {exc}") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateInvalid(
                "body", f"{rule}: placeholder {{{name}}} must be a plain {{name}}"
            )
        names.append(name)
    return names


def validate_body(body: str) -> list[str]:
    """Every required placeholder present, no unknown one; returns the placeholders."""
    return required_placeholders(body, SMS_TEMPLATE, REQUIRED_PLACEHOLDERS, "the SMS")


def required_placeholders(
    body: str, rule: str, required: tuple[str, ...], subject: str
) -> list[str]:
    """The placeholders of ``body``: each of ``required`` present and no other (``rule``
    names the refusal, ``subject`` what must state the missing content)."""
    names = placeholders(body, rule)
    unknown = sorted(set(names) - set(required))
    if unknown:
        raise TemplateInvalid(
            "body",
            f"{rule}: unknown placeholder(s) {', '.join(unknown)}; allowed: {', '.join(required)}",
        )
    missing = [p for p in required if p not in names]
    if missing:
        raise TemplateInvalid(
            "body",
            f"{rule}: {subject} must state {', '.join(missing)} "
            f"(placeholder(s) {', '.join('{' + m + '}' for m in missing)} missing)",
        )
    return names


def required_values(
    values: Mapping[str, str],
    rule: str,
    required: tuple[str, ...],
    content_of: str,
    limit: Callable[[str], int],
) -> dict[str, str]:
    """The values to render, stripped: each of ``required`` given and non-blank, at most
    ``limit(name)`` characters without braces, no unknown one (``rule`` names the refusal,
    ``content_of`` what they are the required content of)."""
    unknown = sorted(set(values) - set(required))
    if unknown:
        raise TemplateInvalid(f"values.{unknown[0]}", f"{rule}: unknown value {unknown[0]}")
    clean: dict[str, str] = {}
    for name in required:
        value = values.get(name)
        if value is None or not value.strip():
            raise TemplateInvalid(
                f"values.{name}", f"{rule}: {name} is required content of {content_of}"
            )
        most = limit(name)
        if len(value) > most or "{" in value or "}" in value:
            raise TemplateInvalid(
                f"values.{name}",
                f"{rule}: {name} must be at most {most} characters without braces",
            )
        clean[name] = value.strip()
    return clean


def render(body: str, values: Mapping[str, str]) -> str:
    """The text of one SMS; every required value given and non-blank, no unknown value,
    and the rendered text carries each required value (SMS-TEMPLATE)."""
    validate_body(body)
    clean = required_values(
        values, SMS_TEMPLATE, REQUIRED_PLACEHOLDERS, "an SMS", lambda _name: MAX_VALUE_CHARS
    )
    return fill(body, clean, SMS_TEMPLATE, MAX_RENDERED_CHARS, "SMS")


def fill(body: str, clean: Mapping[str, str], rule: str, max_chars: int, what: str) -> str:
    """``body`` rendered with the checked values, which the text must carry, at most
    ``max_chars`` characters long (``rule`` names the refusal, ``what`` the text)."""
    text = body.format_map(clean)
    for name, value in clean.items():
        if value not in text:  # pragma: no cover - guaranteed by the body's placeholders
            raise TemplateInvalid(f"values.{name}", f"{rule}: {name} is not in the text")
    if len(text) > max_chars:
        raise TemplateInvalid(
            "values", f"{rule}: the rendered {what} exceeds {max_chars} characters"
        )
    return text


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
