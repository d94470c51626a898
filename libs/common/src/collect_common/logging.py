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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import structlog
from structlog.types import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from collect_common.security.masking import mask_field

__all__ = [
    "LOG_KEYS_NOT_MASKED",
    "RepeatLimiter",
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

REPEAT_LIMITED_LOGGERS: Final = ("aiokafka",)
"""Libraries that log every failed reconnect while a broker is away (thousands of lines a
minute per service during a broker outage): their repeats are limited by
:class:`RepeatLimiter`."""
REPEAT_WINDOW_SECONDS: Final = 30.0


class RepeatLimiter(logging.Filter):
    """On the handler of standard-library records: of the records of ``loggers`` (and
    their children), lets one per logger, level and message template through per
    ``window`` seconds; the next one let through says how many were held back in between. A record
    with other arguments but the same template (``Unable connect to node %s``) is a repeat.
    """

    def __init__(
        self,
        loggers: tuple[str, ...] = REPEAT_LIMITED_LOGGERS,
        window: float = REPEAT_WINDOW_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._loggers = loggers
        self._window = window
        self._now = now
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == n or name.startswith(n + ".") for n in self._loggers):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._now()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._window:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) >= 1024:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} more like it in the last {now - last[0]:.0f} s)"
        return True


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


class _LineWriter:
    """The final logger of a structlog line: writes the rendered line and flushes, under the
    lock of the standard-library handler on the same stream (lines never interleave)."""

    __slots__ = ("_lock", "_stream", "name")

    def __init__(self, name: str, stream: TextIO, lock: threading.RLock | None) -> None:
        self.name = name  # read by structlog.stdlib.add_logger_name
        self._stream = stream
        self._lock = lock if lock is not None else threading.RLock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _LineWriterFactory:
    def __init__(self, stream: TextIO, lock: threading.RLock | None) -> None:
        self._stream = stream
        self._lock = lock

    def __call__(self, *args: Any) -> _LineWriter:
        name = str(args[0]) if args else "app"
        return _LineWriter(name, self._stream, self._lock)


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

    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=stream is None and sys.stdout.isatty())
    )
    output = stream if stream is not None else sys.stdout
    handler = logging.StreamHandler(output)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RepeatLimiter())
    finishing: list[Processor] = [
        _AddService(service),
        structlog.processors.format_exc_info,
        mask_pii,
        renderer,
    ]

    # The platform's own lines (structlog loggers) are rendered and written straight to the
    # stream: no standard-library record, formatter or handler on the way (the access line
    # of every request went through all three). The level is checked by the bound logger's
    # class, so a disabled level costs one call. Not cached, so capture_logs() and a later
    # configure_logging() keep working for loggers bound before.
    preparing: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        _timestamper(),
        structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        processors=[*preparing, *finishing],
        logger_factory=_LineWriterFactory(output, handler.lock),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=False,
    )

    # Standard-library loggers (uvicorn, SQLAlchemy, aiokafka...) go through a handler on
    # the root logger that prepares their records the same way and ends the same.
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=preparing,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finishing],
        )
    )

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


def get_logger(name: str | None = None, **initial_values: Any) -> FilteringBoundLogger:
    """A structlog logger named ``name`` (pass ``__name__``; ``None`` names it after the caller's
    module)."""
    if name is None:
        name = str(sys._getframe(1).f_globals.get("__name__", "app"))
    logger: FilteringBoundLogger = structlog.get_logger(name, **initial_values)
    return logger


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
