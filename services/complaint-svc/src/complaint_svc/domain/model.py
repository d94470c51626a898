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
pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, cast

from collect_common.events import Event
from collect_common.events.complaint import (
    ComplaintEscalated,
    ComplaintPaused,
    ComplaintResumed,
    ComplaintSlaBreached,
    ComplaintSlaWarning,
    ComplaintStepCompleted,
    SlaStep,
)
from collect_common.events.types import ComplaintOpened
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


def timer_key(ticket_id: str, step: str, level: Level | str, cycle: int = 1) -> str:
    """The first cycle's keys are ``complaint:<ticket>:<step>:<level>``; a later cycle's
    (COMP-ESCALATE) carry it: ``complaint:<ticket>:c<cycle>:<step>:<level>``."""
    if cycle == 1:
        return f"complaint:{ticket_id}:{step}:{level}"
    return f"complaint:{ticket_id}:c{cycle}:{step}:{level}"


@dataclass(frozen=True)
class Evidence:
    """A piece of evidence filed with the ticket: what it is, its size and its SHA-256."""

    id: str
    kind: str  # "email" (the raw message), "attachment", "recording" (a call's)
    name: str | None
    content_type: str | None
    size_bytes: int | None  # None: a recording kept by the dialer, referenced by URI
    sha256: str | None
    added_at: datetime
    recording_uri: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class Alert:
    """A timer to schedule: when ``step`` reaches ``level``."""

    step: str
    level: Level
    due_at: datetime
    percent: int


def alerts_for(clock: StepClock, policy: ComplaintPolicy) -> list[Alert]:
    """The warning and breach instants of a running step (rule COMP-SLA-WARN)."""
    assert clock.started_at is not None and clock.deadline is not None
    span = clock.deadline - clock.started_at
    first, second = policy.warning_first_percent, policy.warning_second_percent
    return [
        Alert(clock.step, Level.WARN_FIRST, clock.started_at + span * first / 100, first),
        Alert(clock.step, Level.WARN_SECOND, clock.started_at + span * second / 100, second),
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
            steps[s].deadline = now + policy.duration(s)
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
            follow.deadline = now + policy.duration("followup")
            return alerts_for(follow, policy)
        return []

    def close(self, now: datetime) -> None:
        self._move("close", now)

    def escalate(self, now: datetime, policy: ComplaintPolicy) -> list[Alert]:
        """COMP-ESCALATE: the complainant is dissatisfied at follow-up. The ticket goes to
        senior management and a new investigation cycle starts now: the investigate and
        resolve clocks restart (the follow-up's waits for the new result). Returns the
        alerts to schedule for the new cycle."""
        self._move("escalate", now)
        self.cycle += 1
        self.escalated_at = now
        for s in RESTARTED:
            clock = self.steps[s]
            clock.started_at = None if s == "followup" else now
            clock.deadline = None if s == "followup" else now + policy.duration(s)
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

    def resume(self, now: datetime) -> timedelta:
        """The clocks run again; every running deadline moves by the pause. Returns the shift."""
        if self.paused_at is None:
            raise TicketStateError(self.state, "resume", "the ticket is not paused")
        shift = max(now - self.paused_at, timedelta(0))
        for clock in self.running_steps():
            assert clock.started_at is not None and clock.deadline is not None
            clock.started_at += shift
            clock.deadline += shift
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
