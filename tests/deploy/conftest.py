"""Fixtures of the deployment tests: the parsed files and the services' settings classes.

These tests read files only (no Docker, no cluster, no network): they cross-check
deploy/ against the code it runs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from collect_common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["case", "contact", "complaint", "qa"]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "deploy/compose/compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="session")
def k8s_objects() -> list[dict[str, Any]]:
    """Every object of every manifest under deploy/k8s (kustomizations excepted)."""
    objects: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy/k8s").rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                assert "kind" in doc and "metadata" in doc, f"{path}: not a k8s object"
                doc["__file__"] = str(path.relative_to(ROOT))
                objects.append(doc)
    return objects


@pytest.fixture(scope="session")
def settings_classes() -> dict[str, type[ServiceSettings]]:
    """``case`` -> ``case_svc.settings.Settings`` ..."""
    return {name: importlib.import_module(f"{name}_svc.settings").Settings for name in SERVICES}


@pytest.fixture(scope="session")
def env_names(settings_classes: dict[str, type[ServiceSettings]]) -> dict[str, set[str]]:
    """``case`` -> the environment variables its settings read (no prefix, any case)."""
    return {
        name: {field.upper() for field in cls.model_fields}
        for name, cls in settings_classes.items()
    }
