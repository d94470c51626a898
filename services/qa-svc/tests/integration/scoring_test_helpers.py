"""Shared by the scoring, feedback and report tests: people's headers, a scorecard, a drawn week."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from qa_test_helpers import attempt, deliver

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from qa_svc.entrypoints.consumer import handlers
from qa_svc.service_layer.live_rules import LiveRules

AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
# 2026-W49 runs Monday 2026-11-30 00:00 to Monday 2026-12-07 00:00, Asia/Shanghai.
WEEK = "2026-W49"
STARTS = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
ENDS = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)


class Bearer(Mapping[str, str]):
    """A person's headers, the token issued afresh at each request (the clock moves)."""

    def __init__(self, clock: FrozenClock, subject: str, *roles: Role) -> None:
        self._tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock)
        self._subject = subject
        self._roles = roles or (Role.QA,)

    def __getitem__(self, name: str) -> str:
        if name != "Authorization":
            raise KeyError(name)
        return f"Bearer {self._tokens.issue(self._subject, self._roles)}"

    def __iter__(self) -> Iterator[str]:
        return iter(["Authorization"])

    def __len__(self) -> int:
        return 1


CARD: dict[str, Any] = {
    "sections": [
        {
            "name": "compliance",
            "weight": "50",
            "items": [
                {"id": "identity", "label": "Verifies identity", "max_points": "10"},
                {"id": "disclosure", "label": "No third-party disclosure", "kind": "critical"},
            ],
        },
        {
            "name": "attitude",
            "weight": "20",
            "items": [{"id": "polite", "label": "Polite and calm", "max_points": "5"}],
        },
        {
            "name": "competence",
            "weight": "30",
            "items": [
                {"id": "amounts", "label": "Correct amounts and interest", "max_points": "10"},
                {
                    "id": "plan",
                    "label": "Offers installments when fitting",
                    "max_points": "5",
                    "allow_na": True,
                },
            ],
        },
    ]
}


def answers(
    identity: str = "8", polite: str = "5", amounts: str = "7", plan: str | None = "2"
) -> list[dict[str, Any]]:
    """On CARD: 8/10, 5/5, 7+2 of 15 scores 78.00; ``plan=None`` is not applicable."""
    return [
        {"item_id": "identity", "points": identity},
        {"item_id": "disclosure", "passed": True},
        {"item_id": "polite", "points": polite},
        {"item_id": "amounts", "points": amounts},
        {"item_id": "plan", "na": True} if plan is None else {"item_id": "plan", "points": plan},
    ]


async def staff(api: httpx.AsyncClient, clock: FrozenClock) -> dict[str, Bearer]:
    """qa-1 and qa-2 join the pool; ops make qa-boss a supervisor."""
    people = {s: Bearer(clock, s) for s in ("qa-1", "qa-2", "qa-boss")}
    for s in ("qa-1", "qa-2"):
        r = await api.post("/v1/qa-staff/me", headers=people[s])
        assert r.status_code == 200, r.text
    r = await api.put(
        "/v1/qa-staff/qa-boss", json={"active": True, "supervisor": True}, headers=OPS
    )
    assert r.status_code == 200 and r.json()["supervisor"] is True, r.text
    return people


async def define_card(api: httpx.AsyncClient, boss: Mapping[str, str]) -> None:
    r = await api.post("/v1/scorecards/calls/versions", json=CARD, headers=boss)
    assert r.status_code == 201, r.text


async def drawn_week(
    api: httpx.AsyncClient,
    clock: FrozenClock,
    contacts: Sequence[tuple[str, str]] = (),
    count: int = 60,
) -> dict[str, Any]:
    """Commit 2026-W49, deliver ``count`` calls and letters by four agents (or the given
    ``(agent, channel)`` contacts) during it, draw it; the drawn sample."""
    runtime: Any = api.app.state.runtime  # type: ignore[attr-defined]
    qa = Bearer(clock, "qa-sampler")
    r = await api.post("/v1/samples/commitments", json={"week": WEEK}, headers=qa)
    assert r.status_code == 201, r.text
    clock.set(STARTS + timedelta(hours=1))
    h = handlers(lambda: runtime.context_of(LiveRules), clock)
    plan = list(contacts) or [
        (f"agent-{i % 4}", "call" if i % 3 else "letter") for i in range(count)
    ]
    for i, (agent, channel) in enumerate(plan):
        at = STARTS + timedelta(hours=2 + i)
        await deliver(runtime, h, attempt(f"D{i}", at, agent=agent, channel=channel))
    clock.set(ENDS + timedelta(hours=2))
    r = await api.post(f"/v1/samples/{WEEK}/draw", headers=qa)
    assert r.status_code == 200, r.text
    return dict(r.json())
