"""Write each service's OpenAPI document to docs/openapi/<service>.json (`make openapi`).

    python scripts/export_openapi.py [--output-dir DIR] [--check] [SERVICE ...]

The documents come from the apps themselves (``create_app(settings).openapi()``),
built with settings that connect to nothing; keys are sorted, so the output depends
only on the code. ``--check`` writes nothing and exits 1 when a committed document
differs from what the code gives (tests/deploy/test_docs.py does the same).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["case", "contact", "complaint", "qa"]
OUTPUT_DIR = ROOT / "docs" / "openapi"
COMMAND = "make openapi"


def openapi_document(service: str) -> dict[str, Any]:
    """The OpenAPI document of ``<service>-svc`` (the app is built, never started)."""
    settings_mod = importlib.import_module(f"{service}_svc.settings")
    main = importlib.import_module(f"{service}_svc.main")
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_mod.Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/{service}.db",
            kafka_bootstrap_servers="127.0.0.1:1",
            relay_enabled=False,
            consumer_enabled=False,
            scheduler_enabled=False,
            log_json=False,
        )
        app = main.create_app(settings)
        document: dict[str, Any] = app.openapi()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_documents(services: list[str] | None = None) -> dict[str, str]:
    """``"case-svc.json"`` -> the rendered document, for each service."""
    return {f"{s}-svc.json": render(openapi_document(s)) for s in services or SERVICES}


def drifted(output_dir: Path = OUTPUT_DIR, services: list[str] | None = None) -> list[str]:
    """The files under ``output_dir`` that are missing or differ from the code."""
    out = []
    for name, text in build_documents(services).items():
        path = output_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", help="case, contact, complaint, qa (default: all)")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        parser.error(f"unknown services {sorted(unknown)}; choose from {SERVICES}")
    services = args.services or SERVICES
    if args.check:
        stale = drifted(args.output_dir, services)
        for path in stale:
            print(f"{path} is out of date; run `{COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in build_documents(services).items():
        (args.output_dir / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.output_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
