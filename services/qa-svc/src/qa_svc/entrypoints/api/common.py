"""What the scoring, review, sanction and report routers share: the runtime and the live
policy as dependencies, the problems a scoring refusal or an unusable scorecard or answer
is answered with, and how stored text is shown (masked, SEC-PII) and section scores read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Request

from collect_common.runtime import ServiceRuntime
from collect_common.security.masking import mask_text
from collect_common.web.problems import ProblemError
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.scoring import RULE, ScoringError
from qa_svc.service_layer.live_rules import LiveRules
from qa_svc.service_layer.scoring import ScoringRefused


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]


def policy_of(runtime: ServiceRuntime) -> QaPolicy:
    """The QA policy in force (the live rules' context)."""
    policy: QaPolicy = runtime.context_of(LiveRules).policy
    return policy


@contextmanager
def scoring_problems() -> Iterator[None]:
    """QA-SCORE problems: a refused step with its status and reason code, or 422 naming
    the field of an unusable scorecard or set of answers."""
    try:
        yield
    except ScoringRefused as exc:
        raise ProblemError(
            exc.status, str(exc), slug=exc.code, rule=RULE, field=exc.field, reason=exc.code
        ) from None
    except ScoringError as exc:
        raise ProblemError(
            422, str(exc), slug="invalid-scoring", rule=RULE, field=exc.field
        ) from None


def masked(text: str | None) -> str | None:
    """Stored free text as answered: masked (SEC-PII); None stays None."""
    return mask_text(text) if text else None


def section_scores(stored: str) -> dict[str, Decimal | None]:
    """The per-section scores kept as JSON: section -> score (None: not applicable)."""
    return {k: (None if v is None else Decimal(v)) for k, v in json.loads(stored).items()}
