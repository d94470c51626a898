"""Business rules as named, versioned, per-contract policy values carrying their rule IDs.

A service declares its policy as a subclass of :class:`Policy`, one field per
configurable rule value, each made with :func:`rule` so the value knows the rule
it implements::

    class ContactPolicy(Policy):
        daily_call_cap: int = rule("CALL-DAILY-CAP", "Call attempts per debtor per day",
                                   default=3, ge=1, le=5)

Handlers read ``policy.daily_call_cap`` and cite ``ContactPolicy.rule_of("daily_call_cap")``
in every denial, so an auditor can trace a decision to its rule and to the
policy version that was in force. A :class:`PolicyBook` holds every version of
every bank contract's policy (from a TOML or JSON file) and answers which one
applies on a given day.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CONTRACT = "default"


def rule(rule_id: str, description: str, **field: Any) -> Any:
    """A policy field implementing rule ``rule_id`` (e.g. ``CALL-QUIET``)."""
    extra = dict(field.pop("json_schema_extra", None) or {})
    extra["rule"] = rule_id
    return Field(description=description, json_schema_extra=extra, **field)


class PolicyError(ValueError):
    """A policy file or value that cannot be used; the message names the field and rule."""


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    contract: str = Field(default=DEFAULT_CONTRACT, description="Bank contract identifier")
    version: str = Field(default="1", description="Version of this contract's policy")
    effective_from: date = Field(
        default=date(2000, 1, 1), description="First day this version applies"
    )

    _reserved: ClassVar[frozenset[str]] = frozenset({"contract", "version", "effective_from"})

    @classmethod
    def rule_of(cls, field: str) -> str:
        """The rule ID a field implements (KeyError for a field that is not a rule)."""
        info = cls.model_fields[field]
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or "rule" not in extra:
            raise KeyError(f"{cls.__name__}.{field} implements no rule")
        return str(extra["rule"])

    @classmethod
    def rules(cls) -> dict[str, str]:
        """Field name -> rule ID, for every rule field."""
        out = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "rule" in extra:
                out[name] = str(extra["rule"])
        return out

    @classmethod
    def reference(cls) -> list[dict[str, Any]]:
        """One row per rule field (rule, field, default, description): the docs' table."""
        rows = []
        for name, rule_id in cls.rules().items():
            info = cls.model_fields[name]
            default = info.get_default(call_default_factory=True)
            rows.append(
                {
                    "rule": rule_id,
                    "field": name,
                    "default": _plain(default),
                    "description": info.description or "",
                }
            )
        return sorted(rows, key=lambda r: (r["rule"], r["field"]))

    def cite(self, field: str) -> dict[str, str]:
        """What a denial or alert carries: the rule, the value's field and policy version."""
        return {
            "rule": self.rule_of(field),
            "policy_field": field,
            "policy_version": f"{self.contract}/{self.version}",
        }


P = TypeVar("P", bound=Policy)


class PolicyBook(Generic[P]):
    """Every version of every contract's policy; the default contract backs the others."""

    def __init__(self, policy_type: type[P], versions: list[P] | None = None) -> None:
        self.policy_type = policy_type
        self._versions: dict[str, list[P]] = {}
        for p in versions or [policy_type()]:
            self._versions.setdefault(p.contract, []).append(p)
        for contract, items in self._versions.items():
            items.sort(key=lambda p: p.effective_from)
            starts = [p.effective_from for p in items]
            if len(set(starts)) != len(starts):
                raise PolicyError(f"contract {contract}: two versions start on the same day")
        if DEFAULT_CONTRACT not in self._versions:
            self._versions[DEFAULT_CONTRACT] = [policy_type()]

    def for_contract(self, contract: str | None, on: date) -> P:
        """The version in force for ``contract`` on day ``on`` (else the default contract's)."""
        for name in (contract or DEFAULT_CONTRACT, DEFAULT_CONTRACT):
            candidates = [p for p in self._versions.get(name, []) if p.effective_from <= on]
            if candidates:
                return candidates[-1]
        raise PolicyError(f"no {self.policy_type.__name__} in force on {on}")

    def contracts(self) -> list[str]:
        return sorted(self._versions)

    @classmethod
    def parse(cls, policy_type: type[P], data: dict[str, Any]) -> PolicyBook[P]:
        """``{"policies": [{"contract": ..., "version": ..., "effective_from": ..., ...}]}``;
        each version starts from the defaults and overrides what it names."""
        entries = data.get("policies")
        if not isinstance(entries, list):
            raise PolicyError("a policy file holds a list named 'policies'")
        versions = []
        for index, entry in enumerate(entries):
            try:
                versions.append(policy_type.model_validate(entry))
            except ValidationError as exc:
                raise PolicyError(_describe(policy_type, index, exc)) from None
        return cls(policy_type, versions)

    @classmethod
    def load(cls, policy_type: type[P], path: Path) -> PolicyBook[P]:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return cls.parse(policy_type, data)


def _describe(policy_type: type[Policy], index: int, exc: ValidationError) -> str:
    rules = policy_type.rules()
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        top = str(err["loc"][0]) if err["loc"] else ""
        rule_note = f" (rule {rules[top]})" if top in rules else ""
        parts.append(f"policies[{index}].{field}{rule_note}: {err['msg']}")
    return "; ".join(parts)


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
