"""Review tasks and scorecards over the API on PostgreSQL (QA-SCORE), the clock moved by hand.

A drawn week's records become tasks spread over the pool, each specialist lists and
scores their own against the scorecard's current version, the agent disputes within the
window, a supervisor decides; a calibration session shows the spread of several scores.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from qa_test_helpers import settings_for
from scoring_test_helpers import (
    AUDITOR,
    CARD,
    OPS,
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
from qa_svc.main import create_app

pytestmark = pytest.mark.postgres


async def _all_pages(
    api: httpx.AsyncClient, url: str, headers: Any, **query: str
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **query}
        if cursor:
            params["cursor"] = cursor
        r = await api.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def test_scorecard_versions_are_kept_and_only_supervisors_define_them(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        people = await staff(api, clock)
        r = await api.post("/v1/scorecards/calls/versions", json=CARD, headers=people["qa-1"])
        assert r.status_code == 403 and r.json()["rule"] == "QA-SCORE"

        bad = {"sections": [{**CARD["sections"][0], "weight": "60"}, *CARD["sections"][1:]]}
        r = await api.post("/v1/scorecards/calls/versions", json=bad, headers=people["qa-boss"])
        assert r.status_code == 422
        assert r.json()["rule"] == "QA-SCORE" and r.json()["field"] == "sections.weight"

        await define_card(api, people["qa-boss"])
        second = {
            "sections": [
                {**CARD["sections"][0], "weight": "40"},
                {**CARD["sections"][1], "weight": "30"},
                CARD["sections"][2],
            ]
        }
        r = await api.post("/v1/scorecards/calls/versions", json=second, headers=people["qa-boss"])
        assert r.status_code == 201 and r.json()["version"] == 2

        now = (await api.get("/v1/scorecards/calls", headers=AUDITOR)).json()
        assert now["version"] == 2 and now["sections"][0]["weight"] == "40"
        old = (await api.get("/v1/scorecards/calls/versions/1", headers=OPS)).json()
        assert old["version"] == 1 and old["sections"][0]["weight"] == "50"
        assert (await api.get("/v1/scorecards/nope", headers=OPS)).status_code == 404


async def test_a_drawn_week_becomes_tasks_scored_disputed_and_decided(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        people = await staff(api, clock)
        qa1, qa2, boss = people["qa-1"], people["qa-2"], people["qa-boss"]
        sample = await drawn_week(api, clock)
        picked = sample["random_ids"] + sample["risk_ids"]
        assert len(picked) >= 6

        # not drawn or unknown weeks are refused
        r = await api.post("/v1/reviews/weeks/2026-W50", headers=qa1)
        assert r.status_code == 404 and r.json()["rule"] == "QA-SCORE"

        made = await api.post(f"/v1/reviews/weeks/{WEEK}", headers=qa1)
        assert made.status_code == 200, made.text
        assert made.json() == {
            "week": WEEK,
            "created": len(picked),
            "existing": 0,
            "assigned": len(picked),
        }
        again = (await api.post(f"/v1/reviews/weeks/{WEEK}", headers=qa1)).json()
        assert again["created"] == 0 and again["existing"] == len(picked)

        # least loaded: the three active members' shares differ by at most one
        mine = {s: await _all_pages(api, "/v1/reviews", people[s]) for s in people}
        loads = Counter({s: len(v) for s, v in mine.items()})
        assert sum(loads.values()) == len(picked)
        assert max(loads.values()) - min(loads.values()) <= 1
        assert all(t["assignee"] == s for s, v in mine.items() for t in v)
        assert {t["record_id"] for v in mine.values() for t in v} == set(picked)
        kinds = Counter(t["kind"] for v in mine.values() for t in v)
        assert kinds == {"sample": len(sample["random_ids"]), "risk": len(sample["risk_ids"])}
        # ops and auditors list everyone's, by assignee if they wish
        everyone = await _all_pages(api, "/v1/reviews", AUDITOR)
        assert len(everyone) == len(picked)
        assert (
            await api.get("/v1/reviews", headers=Bearer(clock, "agent-0", Role.AGENT))
        ).status_code == 403

        await define_card(api, boss)
        task = mine["qa-1"][0]
        agent = Bearer(clock, task["agent_id"], Role.AGENT)

        # only the assignee scores; against the current version, recorded
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/score",
            json={"scorecard_id": "calls", "answers": answers()},
            headers=qa2,
        )
        assert r.status_code == 403 and r.json()["reason"] == "not-assignee"
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/score",
            json={"scorecard_id": "calls", "answers": answers()[:-1]},
            headers=qa1,
        )
        assert r.status_code == 422 and r.json()["field"] == "answers"
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/score",
            json={"scorecard_id": "calls", "answers": answers(), "comment": "fine call"},
            headers=qa1,
        )
        assert r.status_code == 200, r.text
        scored = r.json()
        assert scored["result"]["score"] == "78.00" and scored["result"]["auto_failed"] is False
        assert scored["task"]["status"] == "scored"
        assert scored["task"]["scorecard_version"] == 1
        assert scored["task"]["dispute_until"] == (
            clock.now() + timedelta(days=7)
        ).isoformat().replace("+00:00", "Z")
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/score",
            json={"scorecard_id": "calls", "answers": answers()},
            headers=qa1,
        )
        assert r.status_code == 409 and r.json()["reason"] == "illegal-transition"

        # the agent sees the task about them; another agent does not
        seen = await api.get(f"/v1/reviews/{task['task_id']}", headers=agent)
        assert seen.status_code == 200
        assert seen.json()["scoring"]["sections"] == {
            "compliance": "80.00",
            "attitude": "100.00",
            "competence": "60.00",
        }
        other = Bearer(clock, "agent-nobody", Role.AGENT)
        assert (await api.get(f"/v1/reviews/{task['task_id']}", headers=other)).status_code == 404

        # dispute: only the agent, with a reason kept encrypted and shown masked
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/dispute", json={"reason": "x"}, headers=other
        )
        assert r.status_code == 403
        clock.advance(timedelta(days=2))
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/dispute",
            json={"reason": "the debtor 13812345678 asked me to call back"},
            headers=agent,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "disputed"
        assert "13812345678" not in r.json()["dispute_reason"]
        assert "asked me to call back" in r.json()["dispute_reason"]

        # the decision: not the scorer's, a supervisor's; amended
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/decision",
            json={"decision": "upheld", "note": "ok"},
            headers=qa2,
        )
        assert r.status_code == 403 and r.json()["reason"] == "not-supervisor"
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/decision",
            json={"decision": "amended", "note": "the callback was asked for"},
            headers=boss,
        )
        assert r.status_code == 422 and r.json()["field"] == "score"
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/decision",
            json={"decision": "amended", "score": "85.50", "note": "the callback was asked for"},
            headers=boss,
        )
        assert r.status_code == 200, r.text
        decided = r.json()
        assert (decided["status"], decided["decision"], decided["score"]) == (
            "decided",
            "amended",
            "85.50",
        )
        detail = (await api.get(f"/v1/reviews/{task['task_id']}", headers=qa1)).json()
        assert detail["scoring"]["score"] == "78.00"  # the original scoring stays

        # a score left undisputed past the window can no longer be disputed
        late = mine["qa-1"][1]
        r = await api.post(
            f"/v1/reviews/{late['task_id']}/score",
            json={"scorecard_id": "calls", "answers": answers(plan=None)},
            headers=qa1,
        )
        assert r.status_code == 200 and r.json()["result"]["score"] == "81.00"
        clock.advance(timedelta(days=7))
        r = await api.post(
            f"/v1/reviews/{late['task_id']}/dispute",
            json={"reason": "too late"},
            headers=Bearer(clock, late["agent_id"], Role.AGENT),
        )
        assert r.status_code == 409 and r.json()["reason"] == "dispute-window-closed"

        # qa-1's own open list shrank by the two scored
        open_now = await _all_pages(api, "/v1/reviews", qa1, status="open")
        assert len(open_now) == len(mine["qa-1"]) - 2


async def test_a_supervisor_may_not_decide_a_dispute_of_their_own_score(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        people = await staff(api, clock)
        boss = people["qa-boss"]
        await drawn_week(api, clock, count=12)
        await api.post(f"/v1/reviews/weeks/{WEEK}", headers=boss)
        await define_card(api, boss)
        task = (await api.get("/v1/reviews", headers=boss)).json()["items"][0]
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/score",
            json={"scorecard_id": "calls", "answers": answers()},
            headers=boss,
        )
        assert r.status_code == 200
        agent = Bearer(clock, task["agent_id"], Role.AGENT)
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/dispute", json={"reason": "no"}, headers=agent
        )
        assert r.status_code == 200
        r = await api.post(
            f"/v1/reviews/{task['task_id']}/decision",
            json={"decision": "upheld", "note": "mine"},
            headers=boss,
        )
        assert r.status_code == 403 and r.json()["reason"] == "own-score"


async def test_calibration_shows_each_score_and_the_spread(pg_url: str, clock: FrozenClock) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        people = await staff(api, clock)
        await define_card(api, people["qa-boss"])
        r = await api.post(
            "/v1/calibrations",
            json={"record_id": "rec-1", "scorecard_id": "calls"},
            headers=people["qa-1"],
        )
        assert r.status_code == 403
        r = await api.post(
            "/v1/calibrations",
            json={"record_id": "rec-1", "scorecard_id": "calls"},
            headers=people["qa-boss"],
        )
        assert r.status_code == 201, r.text
        session = r.json()
        assert session["scorecard_version"] == 1 and session["count"] == 0
        # a new version after the session opened does not change what it scores against
        await define_card(api, people["qa-boss"])

        given = {
            "qa-1": answers(),  # 78.00
            "qa-2": answers(identity="10", amounts="10", plan="5"),  # 100.00
            "qa-boss": answers(identity="6", polite="4", amounts="4"),  # 30+16+12 = 58.00
        }
        for who, a in given.items():
            r = await api.post(
                f"/v1/calibrations/{session['calibration_id']}/scores",
                json={"answers": a},
                headers=people[who],
            )
            assert r.status_code == 201, r.text
        r = await api.post(
            f"/v1/calibrations/{session['calibration_id']}/scores",
            json={"answers": answers()},
            headers=people["qa-1"],
        )
        assert r.status_code == 409 and r.json()["reason"] == "already-scored"

        got = (
            await api.get(f"/v1/calibrations/{session['calibration_id']}", headers=AUDITOR)
        ).json()
        assert {s["scorer"]: s["score"] for s in got["scores"]} == {
            "qa-1": "78.00",
            "qa-2": "100.00",
            "qa-boss": "58.00",
        }
        assert got["count"] == 3
        assert got["mean"] == "78.67"
        assert got["spread"] == "42.00"
        assert got["stddev"] == "17.15"  # population SD of 78, 100, 58
        assert got["scorecard_version"] == 1


async def test_concurrent_task_runs_make_each_task_once_and_keep_loads_even(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        people = await staff(api, clock)
        sample = await drawn_week(api, clock)
        picked = len(sample["random_ids"]) + len(sample["risk_ids"])
        runs = await asyncio.gather(
            *(api.post(f"/v1/reviews/weeks/{WEEK}", headers=people["qa-1"]) for _ in range(4)),
            *(api.post("/v1/reviews/assign", headers=people["qa-2"]) for _ in range(2)),
        )
        assert all(r.status_code == 200 for r in runs), [r.text for r in runs]
        assert sum(r.json()["created"] for r in runs[:4]) == picked
        assert sum(r.json()["assigned"] for r in runs) == picked
        everyone = await _all_pages(api, "/v1/reviews", AUDITOR)
        assert len(everyone) == picked
        loads = Counter(t["assignee"] for t in everyone)
        assert set(loads) == set(people)
        assert max(loads.values()) - min(loads.values()) <= 1
