"""BROKER_LOG_FORMAT=text: one line per record, whatever a request puts into the message (no forged lines)."""

from __future__ import annotations

import io
import logging

import pytest

from broker.ops.observability import configure_logging
from tests.harness import Harness


@pytest.fixture
def text_log():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("text", stream=stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level


def test_a_path_with_a_newline_cannot_forge_a_log_line(keys, text_log):
    harness = Harness(keys)
    reply = harness.client.get("/nowhere%0d%0a2026-12-02 05:00:00,000 INFO [-] broker.ops.audit: login ok")
    assert reply.status_code == 404
    lines = text_log.getvalue().splitlines()
    assert not any(line.startswith("2026-12-02 05:00:00,000") for line in lines)
    (logged,) = [line for line in lines if "/nowhere" in line]
    assert "/nowhere\\r\\n2026-12-02 05:00:00,000 INFO" in logged


def test_fields_and_tracebacks_stay_inside_their_record(text_log):
    log = logging.getLogger("broker.test")
    log.warning("scim user %s refused", "a@b.example\nFORGED\x1b[31m\u2028x")
    try:
        raise ValueError("bad\nFORGED too")
    except ValueError:
        log.exception("failed")
    lines = text_log.getvalue().splitlines()
    assert lines[0].endswith("scim user a@b.example\\nFORGED\\x1b[31m\\u2028x refused")
    assert not any(line.startswith("FORGED") for line in lines)
    assert lines[1].endswith("failed") and all(line.startswith("    ") for line in lines[2:])
    assert "    FORGED too" in lines  # the exception text, indented under its record
