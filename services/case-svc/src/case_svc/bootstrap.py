"""Composition root of case-svc: builds the runtime; nothing connects at import time."""

import json
import tomllib
from pathlib import Path
from typing import Any

from case_svc.adapters.tables import metadata
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import DEFAULT_STRATEGY, StrategyTable
from case_svc.entrypoints.consumer import HANDLERS, SUBSCRIBE
from case_svc.entrypoints.scheduler import timer_handlers
from case_svc.service_layer.intake import CaseContext, IntakeMetrics
from case_svc.settings import Settings
from collect_common.clock import Clock, service_clock
from collect_common.policy import PolicyBook
from collect_common.runtime import ServiceRuntime


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    """The runtime, with the case timers (CASE-BUCKET, CASE-PROMISE, CASE-HARDSHIP) on its
    scheduler (``runtime.scheduler``)."""
    settings = settings or Settings()
    clock = clock or service_clock(settings.clock_file)
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations=settings.migrations_dir,
        handlers=HANDLERS,
        subscribe=SUBSCRIBE,
        clock=clock,
        timer_handlers=timer_handlers(lambda: runtime.context_of(CaseContext), clock),
    )
    runtime.context = case_context(runtime, settings)
    return runtime


def case_context(runtime: ServiceRuntime, settings: Settings) -> CaseContext:
    """The case commands' dependencies: units of work, the field cipher, policy, strategy.

    Policy and strategy come from the configured files (a bank contract's versions
    and its rule table), else the defaults; a bad file stops the service at start
    with a message naming the field and its rule.
    """
    policy = CasePolicy()
    if settings.policy_file is not None:
        book = PolicyBook.load(CasePolicy, settings.policy_file)
        policy = book.for_contract(settings.policy_contract, runtime.clock.now().date())
    strategy = DEFAULT_STRATEGY
    if settings.strategy_file is not None:
        strategy = StrategyTable.from_dict(_read(settings.strategy_file))
    return CaseContext(
        uow_factory=runtime.uow,
        cipher=runtime.cipher,
        policy=policy,
        strategy=strategy,
        metrics=IntakeMetrics(runtime.registry, runtime.service),
    )


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of settings")
    return data
