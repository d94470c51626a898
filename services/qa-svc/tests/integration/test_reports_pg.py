"""QA reports over the API on PostgreSQL: defect rates from the random sample only, scores
per agent, alerts per rule (QA-SAMPLE, QA-SCORE, QA-REALTIME)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from qa_test_helpers import settings_for
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
from collect_common.security.auth import Role
from collect_common.testing.apps import service_client
from qa_svc.domain.sampling import wilson
from qa_svc.main import create_app

pytestmark = pytest.mark.postgres

LOW = answers(identity="2", polite="1", amounts="2", plan="0")  # 10 + 4 + 4 = 18.00
FAILED = [
    {**a, "passed": False} if a["item_id"] == "disclosure" else a for a in answers()
]  # auto-fail
GOOD = answers(identity="10", amounts="10", plan="5")  # 100.00


async def _pages(api: httpx.AsyncClient, url: str, headers: Any, **q: str) -> list[Any]:
    out: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **q}
        if cursor:
            params["cursor"] = cursor
        r = await api.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


async def test_defect_rates_count_the_random_part_only_and_scores_group_by_agent(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        people = await staff(api, clock)
        sample = await drawn_week(api, clock, count=200)
        await api.post(f"/v1/reviews/weeks/{WEEK}", headers=people["qa-1"])
        await define_card(api, people["qa-boss"])
        tasks = await _pages(api, "/v1/reviews", AUDITOR)
        assert len(tasks) == len(sample["random_ids"]) + len(sample["risk_ids"])
        random_ids = set(sample["random_ids"])

        expected_scores: dict[str, list[Decimal]] = defaultdict(list)
        expected_defects: dict[str, int] = defaultdict(int)
        per_stratum: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # reviewed, defects
        amend: dict[str, Any] | None = None
        # the random part in a fixed order: failed, low, good, good, failed, ...; the last
        # one left unreviewed; every risk pick auto-failed
        ordered = sorted(
            (t for t in tasks if t["record_id"] in random_ids), key=lambda t: t["record_id"]
        )
        assert len(ordered) >= 5
        plan: list[tuple[dict[str, Any], Any, str]] = [
            (t, *((FAILED, "0.00"), (LOW, "18.00"), (GOOD, "100.00"), (GOOD, "100.00"))[j % 4])
            for j, t in enumerate(ordered[:-1])
        ]
        plan += [(t, FAILED, "0.00") for t in tasks if t["record_id"] not in random_ids]
        for t, given, score in plan:
            r = await api.post(
                f"/v1/reviews/{t['task_id']}/score",
                json={"scorecard_id": "calls", "answers": given},
                headers=people[t["assignee"]],
            )
            assert r.status_code == 200, r.text
            assert r.json()["result"]["score"] == score
            defective = Decimal(score) < Decimal(80)
            if t["record_id"] in random_ids:
                if amend is None and score == "18.00":
                    amend = t  # disputed below; amended to 90: no longer a defect
                    defective = False
                    score = "90.00"
                per_stratum[t["stratum"]][0] += 1
                per_stratum[t["stratum"]][1] += int(defective)
            expected_scores[t["agent_id"]].append(Decimal(score))
            expected_defects[t["agent_id"]] += int(defective)
        assert amend is not None
        clock.advance(timedelta(hours=1))
        agent = Bearer(clock, amend["agent_id"], Role.AGENT)
        r = await api.post(
            f"/v1/reviews/{amend['task_id']}/dispute", json={"reason": "wrong"}, headers=agent
        )
        assert r.status_code == 200, r.text
        r = await api.post(
            f"/v1/reviews/{amend['task_id']}/decision",
            json={"decision": "amended", "score": "90.00", "note": "recounted"},
            headers=people["qa-boss"] if amend["assignee"] != "qa-boss" else people["qa-1"],
        )
        if amend["assignee"] == "qa-boss":  # the scorer may not decide; make qa-1 one
            assert r.status_code == 403
            await api.put("/v1/qa-staff/qa-1", json={"supervisor": True}, headers=OPS)
            r = await api.post(
                f"/v1/reviews/{amend['task_id']}/decision",
                json={"decision": "amended", "score": "90.00", "note": "recounted"},
                headers=people["qa-1"],
            )
        assert r.status_code == 200, r.text

        # defect rates: the random part, Wilson intervals, the policy threshold
        r = await api.get("/v1/reports/defect-rates", params={"from_week": WEEK}, headers=AUDITOR)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["weeks"] == [WEEK] and report["threshold"] == "80.00"
        strata = {s["stratum"]: s for s in report["strata"]}
        published = {s["stratum"]: s for s in sample["strata"]}
        assert set(strata) == set(published)
        for name, s in strata.items():
            reviewed, defects = per_stratum[name]
            assert s["population"] == published[name]["population"]
            assert s["sampled"] == published[name]["sampled"]
            assert (s["reviewed"], s["defects"]) == (reviewed, defects)
            low, high = wilson(defects, reviewed)
            assert s["rate"] == pytest.approx(defects / reviewed)
            assert (s["ci_low"], s["ci_high"]) == pytest.approx((low, high))
        pop = sum(s["population"] for s in strata.values())
        overall = sum(s["population"] / pop * s["defects"] / s["reviewed"] for s in strata.values())
        assert report["overall_rate"] == pytest.approx(overall)
        assert report["overall_ci_low"] <= overall <= report["overall_ci_high"]
        assert report["complete"] is True
        # the case is not trivial: defects found, picks unreviewed, risk picks all failed
        assert sum(s["defects"] for s in strata.values()) > 0
        assert sum(s["sampled"] - s["reviewed"] for s in strata.values()) > 0
        assert sample["risk_ids"]
        none = await api.get(
            "/v1/reports/defect-rates",
            params={"from_week": "2026-W40", "to_week": "2026-W48"},
            headers=OPS,
        )
        assert none.json()["strata"] == [] and none.json()["overall_rate"] is None
        backwards = await api.get(
            "/v1/reports/defect-rates",
            params={"from_week": WEEK, "to_week": "2026-W48"},
            headers=OPS,
        )
        assert backwards.status_code == 422 and backwards.json()["field"] == "to_week"

        # scores per agent, paginated by agent, all review kinds, the amended score counted
        rows = await _pages(
            api,
            "/v1/reports/agent-scores",
            people["qa-2"],
            **{"from": STARTS.isoformat(), "to": (ENDS + timedelta(days=30)).isoformat()},
        )
        assert [r["agent_id"] for r in rows] == sorted(expected_scores)
        for row in rows:
            scores = expected_scores[row["agent_id"]]
            mean = (sum(scores) / len(scores)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert row["scored"] == len(scores)
            assert Decimal(row["mean"]) == mean
            assert (Decimal(row["min"]), Decimal(row["max"])) == (min(scores), max(scores))
            assert row["defects"] == expected_defects[row["agent_id"]]
        r = await api.get(
            "/v1/reports/agent-scores",
            params={"from": ENDS.isoformat(), "to": STARTS.isoformat()},
            headers=OPS,
        )
        assert r.status_code == 422 and r.json()["field"] == "to"
        assert (
            await api.get(
                "/v1/reports/agent-scores",
                params={"from": STARTS.isoformat(), "to": ENDS.isoformat()},
                headers=Bearer(clock, "agent-0", Role.AGENT),
            )
        ).status_code == 403


async def test_alerts_per_rule_over_a_period_with_their_statuses(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        await drawn_week(api, clock, count=30)  # night-time calls: QA-QUIET alerts
        qa = Bearer(clock, "qa-1")
        listed = await _pages(api, "/v1/alerts", OPS)
        assert listed
        first, second = listed[0], listed[1]
        await api.post(f"/v1/alerts/{first['alert_id']}/acknowledge", headers=qa)
        await api.post(
            f"/v1/alerts/{second['alert_id']}/dismiss", json={"reason": "test call"}, headers=qa
        )
        expected: dict[tuple[str, str], int] = defaultdict(int)
        for a in listed:
            expected[(a["rule_id"], a["check"])] += 1

        period = {
            "from": (STARTS - timedelta(days=7)).isoformat(),
            "to": (ENDS + timedelta(days=7)).isoformat(),
        }
        r = await api.get("/v1/reports/alerts", params=period, headers=AUDITOR)
        assert r.status_code == 200, r.text
        rules = r.json()["rules"]
        assert {(x["rule_id"], x["check"]): x["raised"] for x in rules} == dict(expected)
        statuses: dict[str, int] = defaultdict(int)
        for x in rules:
            for k, v in x["by_status"].items():
                statuses[k] += v
        assert statuses["acknowledged"] == 1 and statuses["dismissed"] == 1
        assert statuses["open"] == len(listed) - 2

        later = {
            "from": (ENDS + timedelta(days=30)).isoformat(),
            "to": (ENDS + timedelta(days=31)).isoformat(),
        }
        r = await api.get("/v1/reports/alerts", params=later, headers=OPS)
        assert r.json()["rules"] == []
