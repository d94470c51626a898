"""Print a development token for a person: ``python scripts/demo/dev_token.py qa qa-1``.

Signed with the development token secret (refused in production), valid 8 hours on the
platform's clock: the shared clock file of ``make run`` (var/clock) when it exists, so a
token minted after moving the clock is valid on the moved clock too.
"""

from __future__ import annotations

import sys
from pathlib import Path

from collect_common.clock import OffsetFileClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET

CLOCK_FILE = Path(__file__).resolve().parents[2] / "var" / "clock"


def token(role: str, subject: str, clock_file: Path = CLOCK_FILE) -> str:
    service = TokenService(DEV_TOKEN_SECRET, "collect-platform", OffsetFileClock(clock_file))
    return service.issue(subject, [Role(role)])


def main(argv: list[str]) -> int:
    roles = [r.value for r in Role]
    if len(argv) != 2 or argv[0] not in roles:
        print(f"usage: dev_token.py ROLE SUBJECT   (ROLE: {', '.join(roles)})", file=sys.stderr)
        return 2
    print(token(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
