"""JSON logging with personal data masked (SEC-PII)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from collect_common.logging import (
    FOREIGN_LOGGERS,
    RepeatLimiter,
    bind_context,
    bound_context,
    clear_context,
    configure_logging,
    get_logger,
)

NATIONAL_ID = "11010519491231002X"
PHONE = "13812345678"
MASKED_ID = "110***********002X"
MASKED_PHONE = "138****5678"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    foreign = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in FOREIGN_LOGGERS
    }
    yield
    clear_context()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (old_handlers, propagate) in foreign.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = old_handlers
        logger.propagate = propagate


@pytest.fixture
def stream() -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("case-svc", stream=buffer)
    return buffer


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_line_is_masked_json_with_context(stream: io.StringIO) -> None:
    bind_context(request_id="req-1", correlation_id="corr-1")
    get_logger("case_svc.handlers").info(
        f"debtor {NATIONAL_ID} called from {PHONE}",
        phone=PHONE,
        debtor={"national_id": NATIONAL_ID, "address": "北京市朝阳区建国路88号"},
        note=f"id {NATIONAL_ID}",
        amount="12345.67",
    )

    raw = stream.getvalue()
    assert NATIONAL_ID not in raw
    assert PHONE not in raw
    [line] = lines(stream)
    assert line["event"] == f"debtor {MASKED_ID} called from {MASKED_PHONE}"
    assert line["phone"] == MASKED_PHONE
    assert line["debtor"] == {"national_id": MASKED_ID, "address": "北京市朝阳区******"}
    assert line["note"] == f"id {MASKED_ID}"
    assert line["amount"] == "12345.67"
    assert line["request_id"] == "req-1"
    assert line["correlation_id"] == "corr-1"
    assert line["service"] == "case-svc"
    assert line["level"] == "info"
    assert line["logger"] == "case_svc.handlers"
    assert line["timestamp"].endswith("Z")


def test_bound_personal_data_is_masked(stream: io.StringIO) -> None:
    bind_context(request_id="req-2", debtor_phone=PHONE)
    get_logger("x").bind(national_id=NATIONAL_ID).warning("lookup")
    [line] = lines(stream)
    assert line["debtor_phone"] == MASKED_PHONE
    assert line["national_id"] == MASKED_ID
    assert line["request_id"] == "req-2"


def test_stdlib_logger_goes_through_the_same_pipeline(stream: io.StringIO) -> None:
    bind_context(request_id="req-3", event_id="evt-1")
    logging.getLogger("uvicorn.error").error("client %s sent %s", NATIONAL_ID, PHONE)
    logging.getLogger("sqlalchemy.engine").warning(f"params ({PHONE!r},)")

    assert NATIONAL_ID not in stream.getvalue()
    uvicorn_line, sqlalchemy_line = lines(stream)
    assert uvicorn_line["event"] == f"client {MASKED_ID} sent {MASKED_PHONE}"
    assert uvicorn_line["logger"] == "uvicorn.error"
    assert uvicorn_line["level"] == "error"
    assert uvicorn_line["service"] == "case-svc"
    assert uvicorn_line["request_id"] == "req-3"
    assert uvicorn_line["event_id"] == "evt-1"
    assert uvicorn_line["timestamp"].endswith("Z")
    assert sqlalchemy_line["event"] == f"params ('{MASKED_PHONE}',)"


def test_exceptions_are_formatted_and_masked(stream: io.StringIO) -> None:
    try:
        raise ValueError(f"no debtor with id {NATIONAL_ID}")
    except ValueError:
        get_logger("x").exception("lookup failed")
        logging.getLogger("aiokafka").exception("consumer failed")

    structlog_line, stdlib_line = lines(stream)
    for line in (structlog_line, stdlib_line):
        assert "Traceback (most recent call last)" in line["exception"]
        assert f"ValueError: no debtor with id {MASKED_ID}" in line["exception"]
        assert NATIONAL_ID not in line["exception"]


def test_non_json_values_are_rendered_masked(stream: io.StringIO) -> None:
    class Debtor:
        def __repr__(self) -> str:
            return f"Debtor({NATIONAL_ID})"

        __str__ = __repr__

    get_logger("x").info("loaded", debtor=Debtor())
    [line] = lines(stream)
    assert line["debtor"] == f"Debtor({MASKED_ID})"


def test_allowlisted_keys_are_not_touched(stream: io.StringIO) -> None:
    # an id that happens to look like a card number would otherwise be masked
    bind_context(request_id="6222021234567890")
    get_logger("x").info("ok", case_ref="6222021234567890")
    [line] = lines(stream)
    assert line["request_id"] == "6222021234567890"
    assert line["case_ref"] == "************7890"


def test_configuring_twice_does_not_duplicate_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("case-svc", stream=first)
    configure_logging("contact-svc", stream=second)
    get_logger("x").info("once")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    assert first.getvalue() == ""
    assert [line["service"] for line in lines(second)] == ["contact-svc", "contact-svc"]


def test_level_filters_both_kinds_of_logger() -> None:
    buffer = io.StringIO()
    configure_logging("case-svc", level="warning", stream=buffer)
    get_logger("x").info("hidden")
    logging.getLogger("aiokafka").info("hidden")
    get_logger("x").warning("shown")
    assert [line["event"] for line in lines(buffer)] == ["shown"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("case-svc", level="LOUD")


def test_foreign_handlers_are_removed_so_lines_propagate() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    stray = io.StringIO()
    uvicorn_error.addHandler(logging.StreamHandler(stray))
    uvicorn_error.propagate = False

    buffer = io.StringIO()
    configure_logging("case-svc", stream=buffer)
    uvicorn_error.warning('Invalid HTTP request from "GET /v1/debtors?phone=%s"', PHONE)
    assert stray.getvalue() == ""
    [line] = lines(buffer)
    assert line["event"] == f'Invalid HTTP request from "GET /v1/debtors?phone={MASKED_PHONE}"'


def test_uvicorn_access_lines_give_way_to_the_request_middleware_line() -> None:
    buffer = io.StringIO()
    configure_logging("case-svc", stream=buffer)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /v1/cases HTTP/1.1" 200')
    assert buffer.getvalue() == ""


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("case-svc")
    get_logger("x").info("to stdout", phone=PHONE)
    out = capsys.readouterr().out
    assert json.loads(out)["phone"] == MASKED_PHONE


def test_console_renderer_is_masked_too() -> None:
    buffer = io.StringIO()
    configure_logging("case-svc", json=False, stream=buffer)
    get_logger("x").info(f"debtor {NATIONAL_ID}", phone=PHONE)
    output = buffer.getvalue()
    assert MASKED_ID in output
    assert MASKED_PHONE in output
    assert NATIONAL_ID not in output
    assert PHONE not in output


def test_context_helpers(stream: io.StringIO) -> None:
    log = get_logger("x")
    bind_context(request_id="req-1", correlation_id=None)
    with bound_context(event_id="evt-9"):
        log.info("inside")
    log.info("after")
    clear_context()
    log.info("cleared")

    inside, after, cleared = lines(stream)
    assert (inside["request_id"], inside["event_id"]) == ("req-1", "evt-9")
    assert "correlation_id" not in inside
    assert after["request_id"] == "req-1"
    assert "event_id" not in after
    assert "request_id" not in cleared


def test_the_level_filters_structlog_and_stdlib_lines_alike() -> None:
    buffer = io.StringIO()
    configure_logging("qa-svc", "WARNING", stream=buffer)
    get_logger("x").info("routine")
    logging.getLogger("aiokafka").info("routine too")
    get_logger("x").warning("worth a look", count=2)
    logging.getLogger("aiokafka").warning("broker slow")
    assert [(line["logger"], line["event"]) for line in lines(buffer)] == [
        ("x", "worth a look"),
        ("aiokafka", "broker slow"),
    ]


def test_an_unnamed_logger_is_named_after_its_module(stream: io.StringIO) -> None:
    get_logger().info("hello")
    [line] = lines(stream)
    assert line["logger"] == __name__
    assert line["level"] == "info"


def test_a_library_repeating_itself_during_an_outage_is_held_to_one_line_a_window() -> None:
    now = [1000.0]
    limiter = RepeatLimiter(("aiokafka",), window=30, now=lambda: now[0])
    buffer = io.StringIO()
    configure_logging("case-svc", stream=buffer)
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is buffer]
    assert [type(f) for f in handler.filters] == [RepeatLimiter]  # installed by configure
    handler.filters[:] = [limiter]  # the same, on a clock the test moves
    conn = logging.getLogger("aiokafka.conn")
    for port in range(500):
        conn.error("Unable connect to node with id %s", port)
    logging.getLogger("aiokafka.producer").warning("Got error produce response")
    logging.getLogger("uvicorn.error").error("not a library that repeats itself")
    logging.getLogger("uvicorn.error").error("not a library that repeats itself")
    now[0] += 31
    conn.error("Unable connect to node with id %s", 7)

    assert [line["event"] for line in lines(buffer)] == [
        "Unable connect to node with id 0",
        "Got error produce response",
        "not a library that repeats itself",
        "not a library that repeats itself",
        "Unable connect to node with id 7 (499 more like it in the last 31 s)",
    ]
