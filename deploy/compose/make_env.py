"""Write deploy/compose/.env with fresh random secrets for the compose stack.

    python3 deploy/compose/make_env.py [--output PATH] [--force]

Every required variable of compose.yaml (documented in .env.example) gets a value in
the format the services parse. The plaintext API keys are printed once, here; the file
holds only their SHA-256 hashes. An existing file is kept unless --force is given.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import sys
from pathlib import Path

SERVICES = ("case", "contact", "complaint", "qa")
# Machine clients of the platform: subject -> roles (collect_common.security.auth.Role).
CLIENTS = {
    "bank-core": "bank",
    "dialer": "dialer",
    "ops-dashboard": "ops",
    "bank-auditor": "auditor",
}


def _b64_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def generate() -> tuple[dict[str, str], dict[str, str]]:
    """The variables of .env, and the plaintext API key of each client."""
    env: dict[str, str] = {"POSTGRES_PASSWORD": secrets.token_hex(24)}
    for service in SERVICES:
        env[f"{service.upper()}_DB_PASSWORD"] = secrets.token_hex(24)
    for service in SERVICES:
        env[f"{service.upper()}_FIELD_KEYS"] = f"k1:{_b64_key()}"
    env["BLIND_INDEX_KEY"] = _b64_key()
    env["TOKEN_SECRET"] = secrets.token_urlsafe(48)
    keys = {s: f"ck_{s.replace('-', '')}_{secrets.token_hex(24)}" for s in CLIENTS}
    env["API_KEYS"] = ";".join(
        f"{subject}:{CLIENTS[subject]}:{hashlib.sha256(key.encode()).hexdigest()}"
        for subject, key in keys.items()
    )
    env["WEBHOOK_SECRETS"] = f"dialer-1:{secrets.token_urlsafe(32)}"
    env["GRAFANA_ADMIN_PASSWORD"] = secrets.token_urlsafe(18)
    return env, keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name(".env"))
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"{args.output} exists; keeping it (--force replaces it)", file=sys.stderr)
        return 1
    env, keys = generate()
    body = "".join(f"{name}={value}\n" for name, value in env.items())
    args.output.write_text("# Written by make_env.py; do not commit.\n" + body)
    args.output.chmod(0o600)
    print(f"wrote {args.output}")
    print("API keys (X-API-Key header), shown only now:")
    for subject, key in keys.items():
        print(f"  {subject:14} {CLIENTS[subject]:8} {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
