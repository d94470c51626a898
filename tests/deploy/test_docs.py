"""Generated documents stay what the code gives: docs/openapi/*.json and docs/policies.md."""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import tomllib
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from collect_common.policy import PolicyBook
from contact_svc.domain.policy import ContactPolicy

SERVICES = ["case", "contact", "complaint", "qa"]


def _script(root: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, root / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _diff(committed: str, generated: str, name: str) -> str:
    lines = difflib.unified_diff(
        committed.splitlines(), generated.splitlines(), f"{name} (committed)", f"{name} (code)"
    )
    return "\n".join(list(lines)[:40])


def test_committed_openapi_documents_match_the_apps(root: Path) -> None:
    export = _script(root, "export_openapi")
    documents = export.build_documents()
    assert sorted(documents) == [f"{s}-svc.json" for s in sorted(SERVICES)]
    stale = []
    for name, text in documents.items():
        path = root / "docs/openapi" / name
        committed = path.read_text(encoding="utf-8") if path.is_file() else ""
        if committed != text:
            stale.append(_diff(committed, text, f"docs/openapi/{name}"))
    if stale:
        pytest.fail(
            "docs/openapi is out of date; regenerate with `make openapi` "
            "(.venv/bin/python scripts/export_openapi.py)\n" + "\n".join(stale),
            pytrace=False,
        )


def test_openapi_documents_describe_each_service_and_its_operations(root: Path) -> None:
    for service in SERVICES:
        doc = json.loads((root / f"docs/openapi/{service}-svc.json").read_text())
        assert doc["info"]["title"] == f"{service}-svc"
        assert {"/healthz", "/readyz", "/metrics"} <= set(doc["paths"])
        assert len(doc["paths"]) > 4, f"{service}-svc documents no business route"


def test_openapi_export_is_deterministic(root: Path) -> None:
    export = _script(root, "export_openapi")
    assert export.build_documents(["qa"]) == export.build_documents(["qa"])


def test_committed_policy_reference_matches_the_policy_classes(root: Path) -> None:
    generated = _script(root, "policy_docs").render()
    path = root / "docs/policies.md"
    committed = path.read_text(encoding="utf-8") if path.is_file() else ""
    if committed != generated:
        pytest.fail(
            "docs/policies.md is out of date; regenerate with `make policy-docs` "
            "(.venv/bin/python scripts/policy_docs.py)\n"
            + _diff(committed, generated, "docs/policies.md"),
            pytrace=False,
        )


def test_policy_reference_lists_every_rule_value_of_every_service(root: Path) -> None:
    docs = _script(root, "policy_docs")
    text = docs.render()
    for service in SERVICES:
        classes = docs.policy_classes(service)
        assert classes, f"{service}-svc has no policy class"
        for cls in classes:
            for field, rule_id in cls.rules().items():
                assert re.search(rf"^\| {re.escape(rule_id)} \| `{field}` \|", text, re.M), (
                    f"{cls.__name__}.{field} ({rule_id}) is missing"
                )


def test_policy_reference_example_is_a_valid_policy_file(root: Path) -> None:
    text = (root / "docs/policies.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None
    book = PolicyBook.parse(ContactPolicy, tomllib.loads(example.group(1)))
    assert book.contracts() == ["bank-a", "default"]
    assert book.for_contract("bank-a", date(2026, 12, 1)).daily_call_cap == 5
    assert book.for_contract("bank-a", date(2026, 11, 30)).daily_call_cap == 3
