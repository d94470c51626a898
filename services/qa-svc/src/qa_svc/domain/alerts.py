"""An alert's life in QA's work list: open -> acknowledged -> dismissed | escalated."""

from __future__ import annotations

from enum import StrEnum


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISMISS = "dismiss"
    ESCALATE = "escalate"


TARGET = {
    Action.ACKNOWLEDGE: AlertStatus.ACKNOWLEDGED,
    Action.DISMISS: AlertStatus.DISMISSED,
    Action.ESCALATE: AlertStatus.ESCALATED,
}
ALLOWED_FROM = {
    Action.ACKNOWLEDGE: frozenset({AlertStatus.OPEN}),
    Action.DISMISS: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}),
    Action.ESCALATE: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}),
}


class IllegalTransition(Exception):
    def __init__(self, action: Action, current: AlertStatus) -> None:
        super().__init__(f"cannot {action.value} an alert that is {current.value}")
        self.action = action
        self.current = current


def transition(current: AlertStatus, action: Action) -> AlertStatus:
    """The status after ``action``; ``IllegalTransition`` naming the current one if refused."""
    if current not in ALLOWED_FROM[action]:
        raise IllegalTransition(action, current)
    return TARGET[action]
