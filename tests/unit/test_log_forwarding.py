"""A process=True core's log records cross the doorbell as LOG frames (platforms.sim.process):
the ``extra`` fields arrive with them, and a frame that tries to set more than plain fields is
counted as malformed, never emitted."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from platforms.sim.process import FRAME, LOG, FrameReader, emit_record, log_frame


def _record(**extra: Any) -> logging.LogRecord:
    return logging.getLogger("aioamp.rpmsg").makeRecord(
        "aioamp.rpmsg", logging.WARNING, __file__, 1, "%s: dropped", ("bus0",), None, extra=extra
    )


def _reader() -> FrameReader:
    return FrameReader(lambda _nid: None, lambda _kind, _detail: None, emit_record)


def _frame(doc: dict[str, Any]) -> bytes:
    body = json.dumps(doc).encode()
    return FRAME.pack(LOG, len(body)) + body


def test_extra_fields_cross_the_doorbell(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    record = _record(bus="bus0", endpoint=1024, reason="queue_full", ok=True, rate=0.5, no=None)
    _reader().feed(log_frame(record))
    (got,) = caplog.records
    assert (got.name, got.levelno, got.getMessage()) == (
        "aioamp.rpmsg",
        logging.WARNING,
        "bus0: dropped",
    )
    assert (got.bus, got.endpoint, got.reason, got.ok, got.rate, got.no) == (  # type: ignore[attr-defined]
        "bus0",
        1024,
        "queue_full",
        True,
        0.5,
        None,
    )


def test_values_json_cannot_carry_plainly_stay_behind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _reader().feed(log_frame(_record(bus="bus0", handle=object(), items=[1, 2])))
    (got,) = caplog.records
    assert got.bus == "bus0"  # type: ignore[attr-defined]
    assert not hasattr(got, "handle") and not hasattr(got, "items")


@pytest.mark.parametrize(
    "extra",
    [
        {"getMessage": "shadows a method"},
        {"levelno": 50},  # a standard attribute, through the back door
        {"_private": 1},
        {"not an identifier": 1},
        {"bus": ["a", "list"]},
        {"bus": {"a": "dict"}},
        "not an object",
    ],
)
def test_a_frame_setting_more_than_plain_fields_is_malformed(
    extra: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    doc = json.loads(log_frame(_record())[FRAME.size :])
    doc["extra"] = extra
    reader = _reader()
    reader.feed(_frame(doc))
    assert reader.malformed == 1
    assert not caplog.records
    doc["extra"] = {}  # the same frame without the bad field goes through
    reader.feed(_frame(doc))
    assert len(caplog.records) == 1 and reader.malformed == 1
