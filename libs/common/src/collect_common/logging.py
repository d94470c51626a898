"""Structured JSON logging for every service, with personal data masked (SEC-PII).

``configure_logging("case-svc")`` once at start-up (the app factory or the entrypoint does it)
and every line on stdout is one JSON object::

    {"event": "case imported", "case_id": "...", "request_id": "...", "level": "info",
     "logger": "case_svc.service_layer.handlers", "timestamp": "2026-01-05T09:00:00.123456Z",
     "service": "case-svc"}

- ``structlog`` loggers (``get_logger(__name__)``) and standard-library loggers (uvicorn,
  SQLAlchemy, aiokafka...) go through the same processors and the same JSON renderer.
- ``bind_context(request_id=..., correlation_id=..., event_id=...)`` puts ids in every line
  logged by the current task (structlog contextvars); ``bound_context`` undoes it on exit.
- SEC-PII: the ``mask_pii`` processor masks national IDs, phone and card numbers found in
  every value (message, fields, formatted tracebacks) and masks fields named like personal
  data (``address``, ``debtor_name``...; see ``security.masking.SENSITIVE_KEYS``). A few keys
  that never hold personal data (``LOG_KEYS_NOT_MASKED``) are skipped.

Run uvicorn with ``log_config=None`` (or let ``configure_logging`` run after it): uvicorn's own
handlers on its loggers are removed so that its lines propagate to the JSON handler.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from collect_common.security.masking import mask_field

__all__ = [
    "LOG_KEYS_NOT_MASKED",
    "bind_context",
    "bound_context",
    "clear_context",
    "configure_logging",
    "get_logger",
    "mask_pii",
]

LOG_KEYS_NOT_MASKED: Final = frozenset(
    {
        "timestamp",
        "level",
        "logger",
        "service",
        "request_id",
        "correlation_id",
        "causation_id",
        "event_id",
    }
)

FOREIGN_LOGGERS: Final = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "sqlalchemy",
    "aiokafka",
    "alembic",
)
"""Libraries whose own handlers are removed so their records reach the JSON handler."""

_HANDLER_MARK: Final = "_collect_common_handler"


def mask_pii(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal data in every value but ``LOG_KEYS_NOT_MASKED``.

    Objects that are not JSON types are replaced by their masked ``str()`` (the renderer would
    otherwise print their ``repr`` unmasked).
    """
    for key, value in event_dict.items():
        if key not in LOG_KEYS_NOT_MASKED:
            event_dict[key] = mask_field(key, value, stringify=True)
    return event_dict


class _AddService:
    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", self.service)
        return event_dict


def _timestamper() -> Processor:
    return structlog.processors.TimeStamper(fmt="iso", utc=True)


def configure_logging(
    service: str,
    level: str = "INFO",
    json: bool = True,
    *,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's root logger. Safe to call again.

    ``json=False`` renders coloured console lines for local development (still masked).
    ``stream`` defaults to ``sys.stdout`` as it is at call time.
    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")

    # Runs for structlog events before they are handed to the standard library. Kept free of
    # per-call settings so loggers bound before a reconfiguration stay correct.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            _timestamper(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so structlog.testing.capture_logs() and reconfiguration keep working.
        cache_logger_on_first_use=False,
    )

    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=stream is None and sys.stdout.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Prepares records from standard-library loggers the way the chain above does.
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            _timestamper(),
            structlog.processors.StackInfoRenderer(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _AddService(service),
            structlog.processors.format_exc_info,
            mask_pii,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)

    for name in FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        for old in list(foreign.handlers):
            foreign.removeHandler(old)
        foreign.propagate = True
    # The request middleware writes one structured line per request (route template,
    # status, duration, ids); uvicorn's own access line would only repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (pass ``__name__``; ``None`` names it after the caller's
    module)."""
    if name is None:
        return structlog.stdlib.get_logger(**initial_values)
    return structlog.stdlib.get_logger(name, **initial_values)


def bind_context(**ids: Any) -> None:
    """Add ids (request_id, correlation_id, event_id...) to every line of the current context.

    ``None`` values are ignored.
    """
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def clear_context() -> None:
    """Forget everything bound with ``bind_context`` in the current context."""
    structlog.contextvars.clear_contextvars()


@contextmanager
def bound_context(**ids: Any) -> Iterator[None]:
    """``bind_context`` for the duration of a ``with`` block (a consumed event, a request)."""
    tokens = structlog.contextvars.bind_contextvars(
        **{k: v for k, v in ids.items() if v is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
