"""Policy and strategy come from a bank contract's files (CASE-BUCKET, CASE-STRATEGY)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from case_svc.bootstrap import bootstrap
from case_svc.domain.strategy import DEFAULT_STRATEGY, Track
from case_svc.service_layer.intake import CaseContext
from case_svc.settings import Settings
from collect_common.policy import PolicyError


def _settings(tmp_path: Path, **files: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
        relay_enabled=False,
        consumer_enabled=False,
        scheduler_enabled=False,
        **files,
    )


def test_a_contracts_policy_and_strategy_table_are_loaded_from_files(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[policies]]\ncontract = "default"\nversion = "2026-11"\n'
        "m1_max_days = 25\nm2_max_days = 55\nm3_max_days = 85\n"
    )
    table = DEFAULT_STRATEGY.to_dict()
    table["version"] = "bank-a-7"
    table["default_track"] = "firm"
    strategy = tmp_path / "strategy.json"
    strategy.write_text(json.dumps(table))

    settings = _settings(tmp_path, policy_file=policy, strategy_file=strategy)
    ctx = bootstrap(settings).context_of(CaseContext)

    assert (ctx.policy.version, ctx.policy.m1_max_days) == ("2026-11", 25)
    assert ctx.strategy.version == "bank-a-7" and ctx.strategy.default_track is Track.FIRM


def test_a_bad_policy_file_stops_the_service_naming_the_field_and_rule(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[policies]]\ncontract = "default"\nm1_max_days = "soon"\n')
    settings = _settings(tmp_path, policy_file=policy)
    with pytest.raises(PolicyError, match=r"m1_max_days \(rule CASE-BUCKET\)"):
        bootstrap(settings)
