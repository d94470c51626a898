"""The live rules as pure functions of event-time facts (QA-REALTIME, QA-QUIET,
SMS-WEEKLY-CAP).

Nothing here keeps state: the service layer loads a debtor's recent calls from the
database (the keyed window state) and asks these functions whether a new event,
on time or late, breaches a rule. Windows use event time, never arrival time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qa_svc.domain.policy import QaPolicy

FREQUENCY = "call_frequency"
DURATION = "call_duration"
QUIET = "quiet_hours"
SPEECH_RATE = "speech_rate"
VOLUME = "volume"
SMS_WEEKLY = "sms_weekly_cap"


@dataclass(frozen=True, slots=True)
class Call:
    """One call attempt to the debtor: the contact event's id and its event time."""

    event_id: str
    at: datetime
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Breach:
    """Where a rule was breached: the window and the events that show it."""

    check: str
    rule_id: str
    window_start: datetime
    window_end: datetime
    evidence: tuple[str, ...]
    detail: str


def frequency_breach(calls: Sequence[Call], new: Call, policy: QaPolicy) -> Breach | None:
    """Whether ``new`` makes some window holding it carry more than the allowed calls.

    Every window ``[s, s + W)`` that contains ``new.at`` starts at a call ``s`` with
    ``new.at - W < s <= new.at``; the breached ones all overlap, so they form one
    breach: from the first breached start to the last breached start + W, with the
    calls of those windows as evidence. ``calls`` must include ``new``.
    """
    window = policy.call_window
    limit = policy.max_calls_per_window
    ordered = sorted(calls, key=lambda c: (c.at, c.event_id))
    starts = sorted({c.at for c in ordered if new.at - window < c.at <= new.at})
    breached = []
    evidence: dict[str, None] = {}
    for start in starts:
        inside = [c for c in ordered if start <= c.at < start + window]
        if len(inside) > limit:
            breached.append(start)
            evidence.update((c.event_id, None) for c in inside)
    if not breached:
        return None
    return Breach(
        check=FREQUENCY,
        rule_id=QaPolicy.rule_of("max_calls_per_window"),
        window_start=breached[0],
        window_end=breached[-1] + window,
        evidence=tuple(evidence),
        detail=f"more than {limit} calls within {policy.call_window_hours} h",
    )


def duration_breach(
    event_id: str, started_at: datetime, seconds: int, policy: QaPolicy
) -> Breach | None:
    """A completed call shorter than the minimum or longer than the maximum."""
    if policy.min_call_seconds <= seconds <= policy.max_call_seconds:
        return None
    bound = "under" if seconds < policy.min_call_seconds else "over"
    return Breach(
        check=DURATION,
        rule_id=QaPolicy.rule_of("min_call_seconds"),
        window_start=started_at,
        window_end=started_at,
        evidence=(event_id,),
        detail=(
            f"call of {seconds} s {bound} the range "
            f"{policy.min_call_seconds}-{policy.max_call_seconds} s"
        ),
    )


def speech_rate_breach(
    event_id: str, started_at: datetime, wpm: float | None, policy: QaPolicy
) -> Breach | None:
    """A completed call whose measured speech rate is over the threshold (QA-REALTIME).

    A call without the measurement is not judged.
    """
    if wpm is None or wpm <= policy.max_speech_rate_wpm:
        return None
    return Breach(
        check=SPEECH_RATE,
        rule_id=QaPolicy.rule_of("max_speech_rate_wpm"),
        window_start=started_at,
        window_end=started_at,
        evidence=(event_id,),
        detail=f"speech rate {wpm:g} wpm over {policy.max_speech_rate_wpm:g} wpm",
    )


def volume_breach(
    event_id: str, started_at: datetime, db: float | None, policy: QaPolicy
) -> Breach | None:
    """A completed call whose measured volume is over the threshold (QA-REALTIME).

    A call without the measurement is not judged.
    """
    if db is None or db <= policy.max_volume_db:
        return None
    return Breach(
        check=VOLUME,
        rule_id=QaPolicy.rule_of("max_volume_db"),
        window_start=started_at,
        window_end=started_at,
        evidence=(event_id,),
        detail=f"volume {db:g} dB over {policy.max_volume_db:g} dB",
    )


@dataclass(frozen=True, slots=True)
class Sms:
    """One SMS sent to the debtor: the event's id and its event time."""

    event_id: str
    at: datetime


def local_week(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The debtor-local ISO week holding ``at``: Monday 00:00 to Monday 00:00, as instants."""
    local = at.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    start = datetime.combine(monday, time(0), tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(at.tzinfo), end.astimezone(at.tzinfo)


def sms_weekly_breach(
    sent: Sequence[Sms], new: Sms, zone: ZoneInfo, policy: QaPolicy
) -> Breach | None:
    """Whether the debtor-local week holding ``new`` has more SMS than the cap.

    ``sent`` are the debtor's SMS (``new`` included); only those of ``new``'s week
    count. The breach is the week, with that week's SMS as evidence, in time order.
    """
    start, end = local_week(new.at, zone)
    week = sorted((s for s in sent if start <= s.at < end), key=lambda s: (s.at, s.event_id))
    cap = policy.sms_weekly_cap
    if len(week) <= cap:
        return None
    return Breach(
        check=SMS_WEEKLY,
        rule_id=QaPolicy.rule_of("sms_weekly_cap"),
        window_start=start,
        window_end=end,
        evidence=tuple(s.event_id for s in week),
        detail=f"{len(week)} SMS in the week of {start.astimezone(zone):%Y-%m-%d}, cap {cap}",
    )


def debtor_zone(timezone: str | None, policy: QaPolicy) -> ZoneInfo:
    """The event's zone when it names a known one, else the policy's default."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(policy.default_timezone)


def in_quiet_hours(local: time, policy: QaPolicy) -> bool:
    start, end = policy.quiet_start, policy.quiet_end
    if start <= end:  # a span within one day
        return start <= local < end
    return local >= start or local < end  # across midnight (22:00-08:00)


def quiet_breach(
    event_id: str, at: datetime, timezone: str | None, policy: QaPolicy
) -> Breach | None:
    """A contact in the forbidden hours, debtor local time (QA-QUIET)."""
    zone = debtor_zone(timezone, policy)
    local = at.astimezone(zone)
    if not in_quiet_hours(local.time(), policy):
        return None
    return Breach(
        check=QUIET,
        rule_id=QaPolicy.rule_of("quiet_start"),
        window_start=at,
        window_end=at,
        evidence=(event_id,),
        detail=(
            f"contact at {local:%H:%M} {zone.key}, inside "
            f"{policy.quiet_start:%H:%M}-{policy.quiet_end:%H:%M}"
        ),
    )
