"""Scores per team on PostgreSQL (QA-SCORE): agents' teams from case-svc's assignments
(case.assigned.v1 through the consumer's handler), the latest assignment winning even when
an older one arrives late; the report groups reviewed records by team, ``unknown`` for
agents whose team is not known."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from qa_test_helpers import deliver, settings_for
from scoring_test_helpers import (
    AUDITOR,
    ENDS,
    OPS,
    STARTS,
    WEEK,
    Bearer,
    answers,
    define_card,
    drawn_week,
    staff,
)

from collect_common.clock import FrozenClock
from collect_common.events.types import CaseAssigned
from collect_common.security.auth import Role
from collect_common.testing.apps import service_client
from qa_svc.entrypoints.consumer import SUBSCRIBE, handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = pytest.mark.postgres

LOW = answers(identity="2", polite="1", amounts="2", plan="0")  # 18.00
FAILED = [{**a, "passed": False} if a["item_id"] == "disclosure" else a for a in answers()]
GOOD = answers(identity="10", amounts="10", plan="5")  # 100.00
PLAN = ((FAILED, "0.00"), (LOW, "18.00"), (GOOD, "100.00"), (GOOD, "100.00"))
PERIOD = {"from": STARTS.isoformat(), "to": (ENDS + timedelta(days=30)).isoformat()}


def assigned(agent: str, team: str | None, at: datetime, case: str) -> CaseAssigned:
    return CaseAssigned(
        case_id=case, debtor_id=f"debtor-{case}", agent_id=agent, team_id=team, assigned_at=at
    )


async def _team_pages(api: httpx.AsyncClient, headers: Any) -> list[dict[str, Any]]:
    """Every team of the report, one per page."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **PERIOD}
        if cursor:
            params["cursor"] = cursor
        r = await api.get("/v1/reports/team-scores", params=params, headers=headers)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


def _expected(
    scored: list[tuple[str, Decimal, bool]], team_of: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The report worked out by hand from the scores given: (agent, score, auto-failed)."""
    by_team: dict[str, list[tuple[str, Decimal, bool]]] = defaultdict(list)
    for agent, score, failed in scored:
        by_team[team_of.get(agent, "unknown")].append((agent, score, failed))
    out: dict[str, dict[str, Any]] = {}
    for team, rows in by_team.items():
        scores = [s for _, s, _ in rows]
        defects = sum(1 for _, s, f in rows if f or s < Decimal(80))
        out[team] = {
            "team_id": team,
            "agents": len({a for a, _, _ in rows}),
            "scored": len(rows),
            "mean": str((sum(scores) / len(scores)).quantize(Decimal("0.01"), ROUND_HALF_UP)),
            "min": str(min(scores)),
            "max": str(max(scores)),
            "defects": defects,
            "defect_rate": pytest.approx(defects / len(rows)),
            "auto_failed": sum(1 for _, _, f in rows if f),
        }
    return out


async def test_scores_per_team_follow_the_latest_assignment_and_unknown_teams_are_kept(
    pg_url: str, clock: FrozenClock
) -> None:
    assert "case.events" in SUBSCRIBE
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        runtime: Any = api.app.state.runtime  # type: ignore[attr-defined]
        h = handlers(lambda: runtime.context_of(LiveRules), clock)
        people = await staff(api, clock)
        await drawn_week(api, clock, count=200)  # calls and letters of agent-0 .. agent-3
        await api.post(f"/v1/reviews/weeks/{WEEK}", headers=people["qa-1"])
        await define_card(api, people["qa-boss"])

        t0 = STARTS - timedelta(days=10)
        # agent-0 and agent-1 in team-a; agent-2 moved from team-a to team-b, and the older
        # assignment to team-a delivered last; agent-3 never assigned: team unknown
        for event in (
            assigned("agent-0", "team-a", t0, "c-1"),
            assigned("agent-1", "team-a", t0, "c-2"),
            assigned("agent-1", "team-a", t0 + timedelta(days=1), "c-3"),
            assigned("agent-2", "team-a", t0, "c-4"),
            assigned("agent-2", "team-b", t0 + timedelta(days=2), "c-5"),
            assigned("agent-2", "team-a", t0 + timedelta(days=1), "c-6"),  # late, older
        ):
            await deliver(runtime, h, event)
        team_of = {"agent-0": "team-a", "agent-1": "team-a", "agent-2": "team-b"}

        tasks: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            r = await api.get("/v1/reviews", params=params, headers=AUDITOR)
            assert r.status_code == 200, r.text
            tasks += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        tasks.sort(key=lambda t: t["task_id"])
        assert len({t["agent_id"] for t in tasks}) == 4
        # every task scored but the last two, which stay open and count nowhere
        scored: list[tuple[str, Decimal, bool]] = []
        for j, t in enumerate(tasks[:-2]):
            given, score = PLAN[j % 4]
            r = await api.post(
                f"/v1/reviews/{t['task_id']}/score",
                json={"scorecard_id": "calls", "answers": given},
                headers=people[t["assignee"]],
            )
            assert r.status_code == 200, r.text
            assert r.json()["result"]["score"] == score
            scored.append((t["agent_id"], Decimal(score), given is FAILED))

        expected = _expected(scored, team_of)
        assert set(expected) == {"team-a", "team-b", "unknown"}
        rows = await _team_pages(api, AUDITOR)
        assert [r["team_id"] for r in rows] == ["team-a", "team-b", "unknown"]
        assert {r["team_id"]: r for r in rows} == expected
        assert sum(r["scored"] for r in rows) == len(tasks) - 2
        assert expected["team-a"]["agents"] == 2 and expected["team-b"]["agents"] == 1
        assert all(0 < r["defects"] < r["scored"] for r in rows)  # not a trivial case

        # agent-0 moves to team-b (the same event redelivered changes nothing), then an
        # older assignment of agent-0 to team-c arrives: agent-0's records now count for
        # team-b, all of them, and never for team-c
        moved = assigned("agent-0", "team-b", STARTS, "c-7")
        await deliver(runtime, h, moved)
        await deliver(runtime, h, moved)
        await deliver(runtime, h, assigned("agent-0", "team-c", STARTS - timedelta(days=1), "c-8"))
        # agent-1 assigned by ops without a team: its team is no longer known
        await deliver(runtime, h, assigned("agent-1", None, STARTS, "c-9"))
        team_of = {"agent-0": "team-b", "agent-2": "team-b"}
        for who in (people["qa-2"], OPS):
            rows = await _team_pages(api, who)
            assert {r["team_id"]: r for r in rows} == _expected(scored, team_of)
            assert [r["team_id"] for r in rows] == ["team-b", "unknown"]

        # a period with no scoring: no teams; a period ending before it starts: 422 on "to"
        r = await api.get(
            "/v1/reports/team-scores",
            params={"from": STARTS.isoformat(), "to": (STARTS + timedelta(days=1)).isoformat()},
            headers=OPS,
        )
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
        r = await api.get(
            "/v1/reports/team-scores",
            params={"from": ENDS.isoformat(), "to": STARTS.isoformat()},
            headers=OPS,
        )
        assert r.status_code == 422 and r.json()["field"] == "to"
        # agents do not see the report
        r = await api.get(
            "/v1/reports/team-scores",
            params=PERIOD,
            headers=Bearer(clock, "agent-0", Role.AGENT),
        )
        assert r.status_code == 403
