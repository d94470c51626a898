"""The complaint ticket (COMP-RECORD) and its lifecycle as an explicit state machine.

States::

    received -> contacted -> verifying -> investigating -> resolved -> followed_up -> closed
                                                                                   \\-> escalated

A ticket moves by completing the steps of the COMP-SLA chain, in order:

==============  ===================  ===============================  =====================
step            rule                 moves the ticket                 clock starts
==============  ===================  ===============================  =====================
``contact``     COMP-SLA-CONTACT     received -> contacted            acceptance
``verify``      COMP-SLA-VERIFY      contacted -> verifying           acceptance
``evidence``    COMP-SLA-EVIDENCE    verifying -> investigating       acceptance
``investigate`` COMP-SLA-INVESTIGATE investigating (preliminary done) acceptance
``resolve``     COMP-SLA-RESOLVE     investigating -> resolved        acceptance
``followup``    COMP-SLA-FOLLOWUP    resolved -> followed_up          the result (resolve)
==============  ===================  ===============================  =====================

then ``close`` (followed_up -> closed) or ``escalate`` (followed_up -> escalated,
COMP-ESCALATE). Escalation is not final: it starts a new investigation *cycle*
(``cycle`` 2, 3, ...) whose ``investigate``, ``resolve`` and ``followup`` clocks
restart from the escalation (the follow-up's, again, from the new result);
completing ``investigate`` moves escalated -> investigating and the chain runs on
until the complainant is satisfied (re-investigate until resolved). Anything else
raises :class:`TicketStateError` naming the current state (the API answers 409).
A paused ticket (waiting on the complainant) has its SLA clocks stopped and takes
no step until resumed; resuming moves every running deadline by the length of the
pause (in working time for a step counted in business hours).

Each cycle is jointly investigated (COMP-JOINT, ``domain.handling``): collection,
compliance and customer service add findings; the cycle's outcome is recorded (state
``investigating``) once all three have, and ``resolve`` (the result communicated)
needs the cycle's outcome. A new cycle keeps the previous cycles' steps as history.

A step's deadline and warnings are counted in the business-hours calendar the policy
gives it (COMP-SLA-*, ``domain.calendar``), around the clock by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final, cast

from collect_common.events import Event
from collect_common.events.complaint import (
    ComplaintClosed,
    ComplaintEscalated,
    ComplaintOutcomeRecorded,
    ComplaintPaused,
    ComplaintResumed,
    ComplaintSlaBreached,
    ComplaintSlaWarning,
    ComplaintStepCompleted,
    SlaStep,
)
from collect_common.events.types import ComplaintOpened
from complaint_svc.domain.handling import (
    Department,
    Finding,
    Outcome,
    OutcomeInvalid,
    Remedy,
    SanctionSeverity,
    StepRecord,
    pending_departments,
    within_sla,
)
from complaint_svc.domain.policy import ComplaintPolicy


class TicketState(StrEnum):
    RECEIVED = "received"
    CONTACTED = "contacted"
    VERIFYING = "verifying"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    FOLLOWED_UP = "followed_up"
    CLOSED = "closed"
    ESCALATED = "escalated"


class Channel(StrEnum):
    HOTLINE = "hotline"
    EMAIL = "email"
    PORTAL = "portal"
    CONTACT = "contact"


class ComplaintType(StrEnum):
    ATTITUDE = "attitude"
    FREQUENCY = "frequency"
    VIOLATION = "violation"
    OTHER = "other"


class Level(StrEnum):
    """An SLA alert: the first and second warnings (50 % and 75 % by default), the breach."""

    WARN_FIRST = "warn_first"
    WARN_SECOND = "warn_second"
    BREACH = "breach"


STEPS: Final[tuple[str, ...]] = (
    "contact",
    "verify",
    "evidence",
    "investigate",
    "resolve",
    "followup",
)
FROM_ACCEPTANCE: Final[tuple[str, ...]] = STEPS[:-1]
# the steps a new investigation cycle (COMP-ESCALATE) restarts
RESTARTED: Final[tuple[str, ...]] = ("investigate", "resolve", "followup")
FINAL_STATES: Final = frozenset({TicketState.CLOSED})
# a cycle's findings are closed once its result is communicated (COMP-JOINT)
FINDINGS_CLOSED: Final = frozenset(
    {TicketState.RESOLVED, TicketState.FOLLOWED_UP, TicketState.CLOSED}
)

# action -> (states it may be taken in, state after it)
TRANSITIONS: Final[dict[str, tuple[frozenset[TicketState], TicketState]]] = {
    "contact": (frozenset({TicketState.RECEIVED}), TicketState.CONTACTED),
    "verify": (frozenset({TicketState.CONTACTED}), TicketState.VERIFYING),
    "evidence": (frozenset({TicketState.VERIFYING}), TicketState.INVESTIGATING),
    "investigate": (
        frozenset({TicketState.INVESTIGATING, TicketState.ESCALATED}),
        TicketState.INVESTIGATING,
    ),
    "resolve": (frozenset({TicketState.INVESTIGATING}), TicketState.RESOLVED),
    "followup": (frozenset({TicketState.RESOLVED}), TicketState.FOLLOWED_UP),
    "close": (frozenset({TicketState.FOLLOWED_UP}), TicketState.CLOSED),
    "escalate": (frozenset({TicketState.FOLLOWED_UP}), TicketState.ESCALATED),
}


class TicketStateError(Exception):
    """An action the ticket's state does not allow (409, naming the current state)."""

    def __init__(self, current: TicketState, action: str, reason: str | None = None) -> None:
        self.current = current
        self.action = action
        detail = f"cannot {action} a ticket in state {current}"
        super().__init__(f"{detail}: {reason}" if reason else detail)


class JointInvestigationIncomplete(TicketStateError):
    """COMP-JOINT: the outcome waits for every department's findings (409, naming them)."""

    def __init__(self, current: TicketState, cycle: int, pending: list[Department]) -> None:
        self.cycle = cycle
        self.pending = pending
        super().__init__(
            current,
            "record the outcome",
            f"cycle {cycle} still waits for the findings of {', '.join(pending)}",
        )


class OutcomeMissing(TicketStateError):
    """COMP-JOINT: the result cannot be communicated before the cycle's outcome (409)."""

    def __init__(self, current: TicketState, cycle: int) -> None:
        self.cycle = cycle
        super().__init__(current, "complete resolve", f"record the outcome of cycle {cycle} first")


class UnknownStep(ValueError):
    pass


@dataclass
class StepClock:
    """One step of the SLA chain: its deadline and what happened to it."""

    step: str
    rule_id: str
    started_at: datetime | None = None  # None: the clock has not started (follow-up)
    deadline: datetime | None = None
    completed_at: datetime | None = None
    warned_first_at: datetime | None = None
    warned_second_at: datetime | None = None
    breached_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.completed_at is None

    @property
    def status(self) -> str:
        if self.completed_at is not None:
            return "done"
        if self.started_at is None:
            return "not_started"
        return "running"

    @property
    def within_sla(self) -> bool | None:
        return within_sla(self.deadline, self.completed_at)

    def record(self, cycle: int) -> StepRecord:
        return StepRecord(
            cycle=cycle,
            step=self.step,
            rule_id=self.rule_id,
            started_at=self.started_at,
            deadline=self.deadline,
            completed_at=self.completed_at,
            warned_first_at=self.warned_first_at,
            warned_second_at=self.warned_second_at,
            breached_at=self.breached_at,
        )


def timer_key(ticket_id: str, step: str, level: Level | str, cycle: int = 1) -> str:
    """The first cycle's keys are ``complaint:<ticket>:<step>:<level>``; a later cycle's
    (COMP-ESCALATE) carry it: ``complaint:<ticket>:c<cycle>:<step>:<level>``."""
    if cycle == 1:
        return f"complaint:{ticket_id}:{step}:{level}"
    return f"complaint:{ticket_id}:c{cycle}:{step}:{level}"


@dataclass(frozen=True)
class Evidence:
    """A piece of evidence filed with the ticket: what it is, its size and its SHA-256.

    A contact record (an SMS, a letter's dispatch, delivery or return) is referenced by
    its id in contact-svc (``reference``): the text stays there (``domain.evidence``)."""

    id: str
    kind: str  # "email" (the raw message), "attachment", "recording" (a call's), or a
    # contact record's kind (domain.evidence.RecordKind)
    name: str | None
    content_type: str | None
    size_bytes: int | None  # None: a recording or contact record referenced elsewhere
    sha256: str | None
    added_at: datetime
    recording_uri: str | None = None
    call_id: str | None = None
    reference: str | None = None  # a contact record: the SMS's message id, the letter's id
    occurred_at: datetime | None = None  # when the call, SMS or letter event happened
    proof_ref: str | None = None  # a letter delivered or returned: the carrier's receipt


@dataclass(frozen=True)
class Alert:
    """A timer to schedule: when ``step`` reaches ``level``."""

    step: str
    level: Level
    due_at: datetime
    percent: int


def alerts_for(clock: StepClock, policy: ComplaintPolicy) -> list[Alert]:
    """The warning and breach instants of a running step (rule COMP-SLA-WARN). A step
    counted in business hours is warned when that share of its working time is used:
    the warning falls the rest of its working time before the deadline."""
    assert clock.started_at is not None and clock.deadline is not None
    first, second = policy.warning_first_percent, policy.warning_second_percent
    cal = policy.calendar(clock.step)
    if cal is None:
        span = clock.deadline - clock.started_at
        at_first = clock.started_at + span * first / 100
        at_second = clock.started_at + span * second / 100
    else:
        total = policy.duration(clock.step)
        at_first = cal.subtract(clock.deadline, total * (100 - first) / 100)
        at_second = cal.subtract(clock.deadline, total * (100 - second) / 100)
    return [
        Alert(clock.step, Level.WARN_FIRST, at_first, first),
        Alert(clock.step, Level.WARN_SECOND, at_second, second),
        Alert(clock.step, Level.BREACH, clock.deadline, 100),
    ]


@dataclass
class Ticket:
    id: str
    number: str
    channel: Channel
    type: ComplaintType
    complainant_name: str
    complainant_contact: str
    content: str
    case_id: str | None
    agent_id: str | None
    state: TicketState
    accepted_at: datetime
    updated_at: datetime
    steps: dict[str, StepClock]
    paused_at: datetime | None = None
    paused_total: timedelta = timedelta(0)
    cycle: int = 1
    escalated_at: datetime | None = None
    followup_note: str | None = None
    complainant_phone: str | None = None
    message_id: str | None = None
    needs_triage: bool = False
    triage_reasons: list[str] = field(default_factory=list)
    debtor_id: str | None = None
    call_id: str | None = None  # contact channel: the call it was reported in (unique)
    evidence: list[Evidence] = field(default_factory=list)
    # COMP-JOINT: every cycle's findings and outcomes; the restarted steps of past cycles
    findings: list[Finding] = field(default_factory=list)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    history: list[StepRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def accept(
        cls,
        *,
        id: str,
        number: str,
        channel: Channel,
        type: ComplaintType,
        complainant_name: str,
        complainant_contact: str,
        content: str,
        case_id: str | None,
        agent_id: str | None,
        now: datetime,
        policy: ComplaintPolicy,
    ) -> Ticket:
        """rule: COMP-RECORD, COMP-SLA-*. Every step's clock but the follow-up starts now."""
        steps = {s: StepClock(step=s, rule_id=policy.rule_of_step(s)) for s in STEPS}
        for s in FROM_ACCEPTANCE:
            steps[s].started_at = now
            steps[s].deadline = policy.deadline(s, now)
        ticket = cls(
            id=id,
            number=number,
            channel=channel,
            type=type,
            complainant_name=complainant_name,
            complainant_contact=complainant_contact,
            content=content,
            case_id=case_id,
            agent_id=agent_id,
            state=TicketState.RECEIVED,
            accepted_at=now,
            updated_at=now,
            steps=steps,
        )
        ticket.events.append(
            ComplaintOpened(
                ticket_id=id,
                channel=channel.value,
                case_id=case_id,
                agent_id=agent_id,
                opened_at=now,
            )
        )
        return ticket

    # -- queries -------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def expected_result_by(self) -> datetime | None:
        """When the result is due (COMP-SLA-RESOLVE): what the complainant is told."""
        return self.steps["resolve"].deadline

    def running_steps(self) -> list[StepClock]:
        return [c for c in self.steps.values() if c.running]

    def cycle_of(self, step: str) -> int:
        """The cycle whose timers the step's clock runs on (restarted steps: the current)."""
        return self.cycle if step in RESTARTED else 1

    def timer_key(self, step: str, level: Level | str) -> str:
        return timer_key(self.id, step, level, self.cycle_of(step))

    def pending_departments(self, cycle: int | None = None) -> list[Department]:
        """The departments whose findings ``cycle`` (the current one) still waits for."""
        return pending_departments(self.findings, self.cycle if cycle is None else cycle)

    def cycle_steps(self, cycle: int) -> list[StepRecord]:
        """The steps of ``cycle`` as they ran: the first cycle has the whole chain, a later
        one the steps it restarted; a past cycle's restarted steps come from history."""
        past = {r.step: r for r in self.history if r.cycle == cycle}
        live = {s: c.record(cycle) for s, c in self.steps.items() if self.cycle_of(s) == cycle}
        both = {**live, **past} if cycle < self.cycle else live
        return [both[s] for s in STEPS if s in both]

    # -- commands ------------------------------------------------------------------------
    def complete(self, step: str, now: datetime, policy: ComplaintPolicy) -> list[Alert]:
        """Complete ``step``: returns the alerts of a clock this starts (the follow-up's)."""
        if step not in self.steps:
            raise UnknownStep(step)
        allowed, target = TRANSITIONS[step]
        if self.paused:
            raise TicketStateError(self.state, f"complete {step}", "the ticket is paused")
        if self.state not in allowed:
            raise TicketStateError(self.state, f"complete {step}")
        earlier = STEPS[: STEPS.index(step)]
        missing = [s for s in earlier if self.steps[s].completed_at is None]
        if missing:
            raise TicketStateError(self.state, f"complete {step}", f"complete {missing[0]} first")
        clock = self.steps[step]
        if clock.completed_at is not None:
            raise TicketStateError(self.state, f"complete {step}", "already completed")
        if step == "resolve" and self.cycle not in self.outcomes:  # rule: COMP-JOINT
            raise OutcomeMissing(self.state, self.cycle)
        assert clock.deadline is not None
        clock.completed_at = now
        self.state = target
        self.updated_at = now
        self.events.append(
            ComplaintStepCompleted(
                ticket_id=self.id,
                step=cast(SlaStep, step),
                rule_id=clock.rule_id,
                state=self.state.value,
                deadline=clock.deadline,
                completed_at=now,
                within_sla=now <= clock.deadline,
            )
        )
        if step == "resolve":  # COMP-SLA-FOLLOWUP runs from the result
            follow = self.steps["followup"]
            follow.started_at = now
            follow.deadline = policy.deadline("followup", now)
            return alerts_for(follow, policy)
        return []

    def close(self, now: datetime) -> None:
        """The final state: ``complaint.closed.v1`` (ids only) tells contact-svc to lift the
        ticket's complaint hold (CONTACT-CONDUCT)."""
        self._move("close", now)
        self.events.append(
            ComplaintClosed(
                ticket_id=self.id, case_id=self.case_id, debtor_id=self.debtor_id, closed_at=now
            )
        )

    def escalate(self, now: datetime, policy: ComplaintPolicy) -> list[Alert]:
        """COMP-ESCALATE: the complainant is dissatisfied at follow-up. The ticket goes to
        senior management and a new investigation cycle starts now: the investigate and
        resolve clocks restart (the follow-up's waits for the new result). Returns the
        alerts to schedule for the new cycle."""
        self._move("escalate", now)
        self.history.extend(self.steps[s].record(self.cycle) for s in RESTARTED)
        self.cycle += 1
        self.escalated_at = now
        for s in RESTARTED:
            clock = self.steps[s]
            clock.started_at = None if s == "followup" else now
            clock.deadline = None if s == "followup" else policy.deadline(s, now)
            clock.completed_at = None
            clock.warned_first_at = clock.warned_second_at = clock.breached_at = None
        self.events.append(
            ComplaintEscalated(ticket_id=self.id, cycle=self.cycle, escalated_at=now)
        )
        return [
            a for s in RESTARTED if self.steps[s].running for a in alerts_for(self.steps[s], policy)
        ]

    def follow_up(
        self, satisfied: bool, note: str | None, now: datetime, policy: ComplaintPolicy
    ) -> list[Alert]:
        """The satisfaction follow-up (COMP-SLA-FOLLOWUP): completes the follow-up step if it
        is still open, then closes (satisfied) or escalates (COMP-ESCALATE). Returns the
        alerts of a new cycle (none when closed)."""
        action = "close" if satisfied else "escalate"
        if self.paused:
            raise TicketStateError(self.state, f"follow up ({action})", "the ticket is paused")
        if self.state not in (TicketState.RESOLVED, TicketState.FOLLOWED_UP):
            raise TicketStateError(
                self.state, f"follow up ({action})", "the result must be communicated first"
            )
        if self.state is TicketState.RESOLVED:
            self.complete("followup", now, policy)
        self.followup_note = note
        if satisfied:
            self.close(now)
            return []
        return self.escalate(now, policy)

    # -- the joint investigation (COMP-JOINT) ---------------------------------------------
    def add_finding(
        self, *, id: str, department: Department, author: str, text: str, now: datetime
    ) -> Finding:
        """A department's findings for the cycle under way, until its outcome is recorded."""
        action = f"add findings of {department}"
        if self.state in FINDINGS_CLOSED:
            raise TicketStateError(self.state, action, f"cycle {self.cycle} has its result")
        if self.cycle in self.outcomes:
            raise TicketStateError(
                self.state, action, f"the outcome of cycle {self.cycle} is recorded"
            )
        finding = Finding(
            id=id,
            cycle=self.cycle,
            department=department,
            author=author,
            text=text,
            added_at=now,
        )
        self.findings.append(finding)
        self.updated_at = now
        return finding

    def record_outcome(
        self,
        *,
        substantiated: bool,
        remedies: tuple[Remedy, ...],
        fee_waiver_amount: Decimal | None,
        sanction_severity: SanctionSeverity | None,
        apology_recorded: bool,
        decided_by: str,
        now: datetime,
        policy: ComplaintPolicy,
    ) -> Outcome:
        """rule: COMP-JOINT, COMP-SANCTION. The current cycle's outcome, once: while the
        ticket is investigated, not paused, and after all three departments' findings.
        Emits ``complaint.outcome_recorded.v1`` (ids only)."""
        action = "record the outcome"
        if self.paused:
            raise TicketStateError(self.state, action, "the ticket is paused")
        if self.state is not TicketState.INVESTIGATING:
            raise TicketStateError(self.state, action)
        if self.cycle in self.outcomes:
            raise TicketStateError(self.state, action, f"cycle {self.cycle} has its outcome")
        pending = self.pending_departments()
        if pending:
            raise JointInvestigationIncomplete(self.state, self.cycle, pending)
        if sanction_severity is not None and self.agent_id is None:
            raise OutcomeInvalid(
                "sanction_requested", "COMP-SANCTION", "the ticket names no agent to sanction"
            )
        outcome = Outcome.decide(
            cycle=self.cycle,
            substantiated=substantiated,
            remedies=remedies,
            fee_waiver_amount=fee_waiver_amount,
            sanction_severity=sanction_severity,
            apology_recorded=apology_recorded,
            decided_by=decided_by,
            decided_at=now,
            fee_waiver_max=policy.fee_waiver_max_amount,
        )
        self.outcomes[self.cycle] = outcome
        self.updated_at = now
        self.events.append(
            ComplaintOutcomeRecorded(
                ticket_id=self.id,
                cycle=self.cycle,
                case_id=self.case_id,
                debtor_id=self.debtor_id,
                agent_id=self.agent_id,
                substantiated=substantiated,
                remedies=[r.value for r in outcome.remedies],
                fee_waiver_amount=outcome.fee_waiver_amount,
                sanction_requested=outcome.sanction_requested,
                sanction_severity=None
                if outcome.sanction_severity is None
                else outcome.sanction_severity.value,
                apology_recorded=apology_recorded,
                decided_at=now,
            )
        )
        return outcome

    def _move(self, action: str, now: datetime) -> None:
        allowed, target = TRANSITIONS[action]
        if self.paused:
            raise TicketStateError(self.state, action, "the ticket is paused")
        if self.state not in allowed:
            raise TicketStateError(self.state, action)
        self.state = target
        self.updated_at = now

    def pause(self, now: datetime) -> None:
        """Waiting on the complainant: the SLA clocks stop."""
        if self.state in FINAL_STATES:
            raise TicketStateError(self.state, "pause")
        if self.paused:
            raise TicketStateError(self.state, "pause", "already paused")
        self.paused_at = now
        self.updated_at = now
        self.events.append(ComplaintPaused(ticket_id=self.id, paused_at=now))

    def resume(self, now: datetime, policy: ComplaintPolicy) -> timedelta:
        """The clocks run again; every running deadline moves by the pause (a step counted
        in business hours: by the working time the pause lasted). Returns the shift."""
        if self.paused_at is None:
            raise TicketStateError(self.state, "resume", "the ticket is not paused")
        shift = max(now - self.paused_at, timedelta(0))
        for clock in self.running_steps():
            assert clock.started_at is not None and clock.deadline is not None
            clock.started_at += shift
            cal = policy.calendar(clock.step)
            worked = None if cal is None else cal.working_between(self.paused_at, now)
            if cal is None:
                clock.deadline += shift
            elif worked:
                clock.deadline = cal.add(clock.deadline, worked)
        self.paused_at = None
        self.paused_total += shift
        self.updated_at = now
        self.events.append(
            ComplaintResumed(
                ticket_id=self.id, resumed_at=now, shifted_seconds=int(shift.total_seconds())
            )
        )
        return shift

    def alert(self, step: str, level: Level, percent: int, now: datetime) -> bool:
        """A step's warning or breach timer fired: record it, once. False if moot."""
        clock = self.steps.get(step)
        if clock is None or not clock.running or self.state in FINAL_STATES:
            return False
        assert clock.deadline is not None
        if level is Level.BREACH:
            if clock.breached_at is not None:
                return False
            clock.breached_at = now
            self.events.append(
                ComplaintSlaBreached(
                    ticket_id=self.id,
                    step=cast(SlaStep, step),
                    rule_id=clock.rule_id,
                    deadline=clock.deadline,
                    breached_at=now,
                )
            )
        else:
            attr = "warned_first_at" if level is Level.WARN_FIRST else "warned_second_at"
            if getattr(clock, attr) is not None:
                return False
            setattr(clock, attr, now)
            self.events.append(
                ComplaintSlaWarning(
                    ticket_id=self.id,
                    step=cast(SlaStep, step),
                    rule_id=clock.rule_id,
                    percent=percent,
                    deadline=clock.deadline,
                    warned_at=now,
                )
            )
        self.updated_at = now
        return True
