"""SMS templates (SMS-TEMPLATE): placeholders, the required content, rendering.

Pure functions. A template body is text with ``{placeholder}`` fields; every SMS must
tell the debtor the overdue amount, the repayment deadline, how to pay and how to reach
the agency, so each of those placeholders is required and no other is accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
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
    names = placeholders(body)
    unknown = sorted(set(names) - ALLOWED_PLACEHOLDERS)
    if unknown:
        raise TemplateInvalid(
            "body",
            f"{SMS_TEMPLATE}: unknown placeholder(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(REQUIRED_PLACEHOLDERS)}",
        )
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in names]
    if missing:
        raise TemplateInvalid(
            "body",
            f"{SMS_TEMPLATE}: the SMS must state {', '.join(missing)} "
            f"(placeholder(s) {', '.join('{' + m + '}' for m in missing)} missing)",
        )
    return names


def render(body: str, values: Mapping[str, str]) -> str:
    """The text of one SMS; every required value given and non-blank, no unknown value,
    and the rendered text carries each required value (SMS-TEMPLATE)."""
    validate_body(body)
    unknown = sorted(set(values) - ALLOWED_PLACEHOLDERS)
    if unknown:
        raise TemplateInvalid(f"values.{unknown[0]}", f"{SMS_TEMPLATE}: unknown value {unknown[0]}")
    for name in REQUIRED_PLACEHOLDERS:
        value = values.get(name)
        if value is None or not value.strip():
            raise TemplateInvalid(
                f"values.{name}", f"{SMS_TEMPLATE}: {name} is required content of an SMS"
            )
        if len(value) > MAX_VALUE_CHARS or "{" in value or "}" in value:
            raise TemplateInvalid(
                f"values.{name}",
                f"{SMS_TEMPLATE}: {name} must be at most {MAX_VALUE_CHARS} characters "
                "without braces",
            )
    text = body.format_map({k: values[k].strip() for k in REQUIRED_PLACEHOLDERS})
    for name in REQUIRED_PLACEHOLDERS:
        if values[name].strip() not in text:  # pragma: no cover - guaranteed by validate_body
            raise TemplateInvalid(f"values.{name}", f"{SMS_TEMPLATE}: {name} not in the text")
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateInvalid(
            "values", f"{SMS_TEMPLATE}: the rendered SMS exceeds {MAX_RENDERED_CHARS} characters"
        )
    return text


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
