"""The verifiable weekly sample over the API on PostgreSQL (QA-SAMPLE), the clock moved by hand.

Commit before the week starts, contact events during it, draw after it; the auditor
reads the revealed seed, the verify endpoint recomputes, and so does this test on its
own with ``qa_svc.domain.sampling``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from qa_test_helpers import attempt, deliver, settings_for
from sqlalchemy import update

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from collect_common.testing.apps import service_client
from qa_svc.adapters.tables import contact_events, sample_picks
from qa_svc.domain import sampling
from qa_svc.entrypoints.consumer import handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = pytest.mark.postgres

AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
# 2026-W49 runs Monday 2026-11-30 00:00 to Monday 2026-12-07 00:00, Asia/Shanghai.
WEEK = "2026-W49"
STARTS = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
ENDS = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)


class _qa(Mapping[str, str]):
    """A QA specialist's headers, the token issued afresh at each request (the clock moves)."""

    def __init__(self, clock: FrozenClock) -> None:
        self._tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock)

    def __getitem__(self, name: str) -> str:
        if name != "Authorization":
            raise KeyError(name)
        return f"Bearer {self._tokens.issue('qa-1', [Role.QA])}"

    def __iter__(self) -> Iterator[str]:
        return iter(["Authorization"])

    def __len__(self) -> int:
        return 1


async def test_commit_before_the_week_draw_after_it_and_the_auditor_recomputes(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        qa = _qa(clock)
        runtime: Any = api.app.state.runtime  # type: ignore[attr-defined]

        # the current week has started: too late to commit to it
        late = await api.post("/v1/samples/commitments", json={"week": "2026-W48"}, headers=qa)
        assert late.status_code == 409 and late.json()["reason"] == "week-started"
        bad = await api.post("/v1/samples/commitments", json={"week": "2026-W54"}, headers=qa)
        assert bad.status_code == 422
        assert (
            await api.post("/v1/samples/commitments", json={"week": WEEK}, headers=AUDITOR)
        ).status_code == 403

        made = await api.post("/v1/samples/commitments", json={"week": WEEK}, headers=qa)
        assert made.status_code == 201, made.text
        published = made.json()["commitment"]
        assert "seed" not in made.json()
        assert made.json()["starts_at"] == "2026-11-29T16:00:00Z"
        again = await api.post("/v1/samples/commitments", json={"week": WEEK}, headers=qa)
        assert again.status_code == 409 and again.json()["reason"] == "already-committed"

        before = await api.get(f"/v1/samples/{WEEK}", headers=AUDITOR)
        assert before.status_code == 200 and before.json()["seed"] is None
        assert (await api.get(f"/v1/samples/{WEEK}", headers=OPS)).status_code == 403
        assert (await api.get(f"/v1/samples/{WEEK}/verify", headers=AUDITOR)).status_code == 409

        # the week: contacts on several channels, one agent breaching the call limit
        clock.set(STARTS + timedelta(hours=2))
        h = handlers(lambda: runtime.context_of(LiveRules), clock)
        channels = ["call", "call", "call", "sms", "letter", "visit"]
        for i in range(120):
            at = STARTS + timedelta(hours=2 + i)
            await deliver(
                runtime, h, attempt(f"D{i}", at, agent=f"agent-{i % 4}", channel=channels[i % 6])
            )
        for j in range(5):  # agent-risk calls one debtor five times in a day: an alert
            await deliver(
                runtime, h, attempt("DR", STARTS + timedelta(hours=3 + j), agent="agent-risk")
            )
        await deliver(runtime, h, attempt("Dout", ENDS + timedelta(hours=1)))  # next week
        async with runtime.uow() as uow:  # qa-svc knows the bucket of the calls
            await uow.session.execute(
                update(contact_events).where(contact_events.c.channel == "call").values(bucket="M1")
            )
            await uow.commit()

        early = await api.post(f"/v1/samples/{WEEK}/draw", headers=qa)
        assert early.status_code == 409 and early.json()["reason"] == "week-not-over"

        clock.set(ENDS + timedelta(hours=2))
        drawn = await api.post(f"/v1/samples/{WEEK}/draw", headers=qa)
        assert drawn.status_code == 200, drawn.text
        assert (await api.post(f"/v1/samples/{WEEK}/draw", headers=qa)).status_code == 409

        got = (await api.get(f"/v1/samples/{WEEK}", headers=AUDITOR)).json()
        assert got["commitment"] == published and got["seed"] is not None
        strata = {s["stratum"]: s for s in got["strata"]}
        assert set(strata) == {"M1/call", "unknown/sms", "unknown/letter", "unknown/visit"}
        assert strata["M1/call"]["population"] == 65  # 60 + 5 risky calls; not next week's
        assert sum(s["population"] for s in strata.values()) == 125
        assert all(s["sampled"] >= 1 for s in strata.values())
        assert len(got["random_ids"]) == sum(s["sampled"] for s in strata.values())
        assert got["risk_ids"] and not set(got["risk_ids"]) & set(got["random_ids"])

        # the coverage dashboards show: the week's population, random part and risk picks
        coverage = {
            s.labels["part"]: s.value
            for family in text_string_to_metric_families((await api.get("/metrics")).text)
            for s in family.samples
            if s.name == "qa_sample_records" and s.labels["week"] == WEEK
        }
        assert coverage == {
            "population": 125,
            "sampled": len(got["random_ids"]),
            "risk": len(got["risk_ids"]),
        }

        ok = (await api.get(f"/v1/samples/{WEEK}/verify", headers=AUDITOR)).json()
        assert ok == {"week": WEEK, "ok": True, "problems": []}

        # the auditor's own recomputation from the revealed seed and the week's records
        seed = bytes.fromhex(got["seed"])
        assert sampling.commitment(seed) == published
        async with runtime.sessions() as s:
            rows = (
                await s.execute(
                    contact_events.select().where(
                        contact_events.c.at >= STARTS, contact_events.c.at < ENDS
                    )
                )
            ).all()
        records = [
            sampling.Record(r.event_id, (sampling.bucket_of(r.bucket), r.channel), r.agent_id)
            for r in rows
        ]
        assert sampling.verify(seed, published, records, got["random_ids"])
        policy = runtime.context_of(LiveRules).policy
        again_drawn = sampling.sample(
            seed, records, policy.sample_rate, weights=policy.sample_weights
        )
        assert [p.record_id for p in again_drawn.random] == got["random_ids"]
        sizes = {sampling.stratum_key(k): v for k, v in again_drawn.sizes.items()}
        assert sizes == {k: v["sampled"] for k, v in strata.items()}

        # a tampered stored sample is caught by the verify endpoint
        victim = got["random_ids"][0]
        outsider = next(
            r.id for r in records if r.id not in set(got["random_ids"]) | set(got["risk_ids"])
        )
        async with runtime.uow() as uow:
            await uow.session.execute(
                update(sample_picks)
                .where(sample_picks.c.week == WEEK, sample_picks.c.record_id == victim)
                .values(record_id=outsider)
            )
            await uow.commit()
        bad_check = (await api.get(f"/v1/samples/{WEEK}/verify", headers=AUDITOR)).json()
        assert bad_check["ok"] is False and bad_check["problems"]
