"""The contact-policy engine: may this contact happen now, and if not, why and when.

A pure function of the debtor's and case's state (the read model built from
case-svc's events), the agent's state (QA's events), the contacts already made
and the instant. Every denial names the rule that made it (CALL-QUIET,
CALL-DAILY-CAP, SMS-WEEKLY-CAP, CASE-STRATEGY, CASE-LIFECYCLE, QA-SANCTION, and the
rule of an active contact hold: do-not-contact or a complaint under investigation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from contact_svc.domain.policy import ContactChannel, ContactPolicy

QA_SANCTION = "QA-SANCTION"


@dataclass(frozen=True, slots=True)
class CaseView:
    """What contact-svc knows of a case: its status and the channels its track allows
    (``None`` until case-svc set a track)."""

    case_id: str
    debtor_id: str
    status: str
    channels: tuple[str, ...] | None
    timezone: str


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    suspended: bool


@dataclass(frozen=True, slots=True)
class Counts:
    """Contacts so far in the debtor's current local day (calls) and ISO week (SMS)."""

    calls_today: int = 0
    unanswered_today: int = 0
    sms_this_week: int = 0


@dataclass(frozen=True, slots=True)
class HoldView:
    """An active contact hold on the debtor (``domain.hold``): every channel is denied with
    its rule until ``until`` (``None``: until someone lifts it)."""

    hold_id: str
    kind: str
    rule: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Denial:
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    denials: list[Denial] = field(default_factory=list)
    next_allowed_at: datetime | None = None

    @property
    def rules(self) -> list[str]:
        return [d.rule for d in self.denials]


def local_day_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The debtor's local calendar day containing ``now``, as aware instants [start, end)."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    return _at(day, time(0), zone), _at(day + timedelta(days=1), time(0), zone)


def local_week_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The debtor's local ISO week (Monday 00:00 to the next Monday 00:00) containing ``now``."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    monday = day - timedelta(days=day.weekday())
    return _at(monday, time(0), zone), _at(monday + timedelta(days=7), time(0), zone)


def quiet_until(at: datetime, timezone: str, policy: ContactPolicy) -> datetime | None:
    """The end of the quiet period (CALL-QUIET) ``at`` falls in, or None outside them."""
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone)
    clock, day = local.time().replace(tzinfo=None), local.date()
    for start, end in policy.quiet_periods:
        if start < end:
            if start <= clock < end:
                return _at(day, end, zone)
        elif clock >= start:  # crosses midnight: quiet until `end` tomorrow
            return _at(day + timedelta(days=1), end, zone)
        elif clock < end:
            return _at(day, end, zone)
    return None


def decide(
    case: CaseView,
    agent: AgentView | None,
    channel: ContactChannel,
    counts: Counts,
    now: datetime,
    policy: ContactPolicy,
    holds: Sequence[HoldView] = (),
) -> Decision:
    """Allow or deny one contact of ``channel`` on ``case`` by ``agent`` at ``now``.

    ``holds`` are the debtor's holds active at ``now``; each one denies every channel with
    its own rule, and the contact is next allowed after the last of them ends."""
    denials: list[Denial] = []
    lasting = False  # a denial that time alone does not lift
    # rule: CONTACT-CONDUCT (a debtor on do-not-contact or under a complaint hold)
    for hold in holds:
        until = f" until {hold.until.astimezone(UTC).isoformat()}" if hold.until else ""
        label = hold.kind.replace("_", "-")
        denials.append(Denial(hold.rule, f"{label} hold {hold.hold_id} is active{until}"))
        if hold.until is None:
            lasting = True
    # rule: CASE-LIFECYCLE
    if case.status in policy.no_contact_statuses:
        denials.append(Denial(policy.rule_of("no_contact_statuses"), f"case is {case.status}"))
        lasting = True
    # rule: CASE-STRATEGY
    allowed_channels = case.channels if case.channels is not None else policy.channels_without_track
    if channel not in allowed_channels:
        reason = f"the case's track allows {', '.join(allowed_channels) or 'no channel'}"
        denials.append(Denial(policy.rule_of("channels_without_track"), reason))
        lasting = True
    # rule: QA-SANCTION
    if agent is not None and agent.suspended:
        denials.append(Denial(QA_SANCTION, f"agent {agent.agent_id} is suspended by QA"))
        lasting = True
    timed = _timed_denials(case.timezone, channel, counts, now, policy)
    denials.extend(timed)
    if not denials:
        return Decision(allowed=True)
    next_at = None
    if not lasting:
        start, counts_then = now, counts
        ends = [h.until for h in holds if h.until is not None and h.until > now]
        if ends:  # the time-bound rules are asked again at the end of the last hold
            start = max(ends)
            day_end = local_day_bounds(now, case.timezone)[1]
            week_end = local_week_bounds(now, case.timezone)[1]
            counts_then = Counts(
                calls_today=0 if start >= day_end else counts.calls_today,
                unanswered_today=0 if start >= day_end else counts.unanswered_today,
                sms_this_week=0 if start >= week_end else counts.sms_this_week,
            )
        next_at = _next_allowed(case.timezone, channel, counts_then, start, policy)
    return Decision(allowed=False, denials=denials, next_allowed_at=next_at)


def _timed_denials(
    timezone: str, channel: str, counts: Counts, now: datetime, policy: ContactPolicy
) -> list[Denial]:
    out: list[Denial] = []
    # rule: CALL-QUIET (calls, and whatever other channels the contract holds to it)
    if channel in policy.quiet_channels and quiet_until(now, timezone, policy) is not None:
        local = now.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
        out.append(Denial(policy.rule_of("quiet_periods"), f"{local} is quiet time for the debtor"))
    if channel == "call":
        # rule: CALL-DAILY-CAP
        if counts.calls_today >= policy.daily_call_cap:
            out.append(
                Denial(
                    policy.rule_of("daily_call_cap"),
                    f"{counts.calls_today} of {policy.daily_call_cap} calls made today",
                )
            )
        elif counts.unanswered_today >= policy.daily_unanswered_cap:
            out.append(
                Denial(
                    policy.rule_of("daily_unanswered_cap"),
                    f"{counts.unanswered_today} of {policy.daily_unanswered_cap} "
                    "unanswered calls today",
                )
            )
    elif channel == "sms" and counts.sms_this_week >= policy.sms_weekly_cap:
        # rule: SMS-WEEKLY-CAP
        out.append(
            Denial(
                policy.rule_of("sms_weekly_cap"),
                f"{counts.sms_this_week} of {policy.sms_weekly_cap} SMS sent this week",
            )
        )
    return out


def _next_allowed(
    timezone: str, channel: str, counts: Counts, now: datetime, policy: ContactPolicy
) -> datetime:
    """The first instant at which the time-bound rules no longer deny (counts reset with a
    new local day or week)."""
    day_end = local_day_bounds(now, timezone)[1]
    week_end = local_week_bounds(now, timezone)[1]
    at = now
    for _ in range(16):  # each step moves forward to a boundary; a few suffice
        moved = at
        if channel == "call":
            if at < day_end and (
                counts.calls_today >= policy.daily_call_cap
                or counts.unanswered_today >= policy.daily_unanswered_cap
            ):
                moved = day_end
        elif channel == "sms" and at < week_end and counts.sms_this_week >= policy.sms_weekly_cap:
            moved = week_end
        if channel in policy.quiet_channels:
            quiet = quiet_until(moved, timezone, policy)
            if quiet is not None:
                moved = quiet
        if moved == at:
            break
        at = moved
    return at.astimezone(UTC)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)
