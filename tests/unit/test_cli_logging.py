"""The CLI's logging: levels from -v/-q/--log-level, the text and JSON formats, and a command
run in-process that leaves the root logger as it found it."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from aioamp.cli import main
from aioamp.logs import JsonFormatter, TextFormatter, chosen_level


@pytest.mark.parametrize(
    ("verbose", "quiet", "level", "expected"),
    [
        (0, 0, None, logging.WARNING),
        (1, 0, None, logging.INFO),
        (2, 0, None, logging.DEBUG),
        (5, 0, None, logging.DEBUG),
        (0, 1, None, logging.ERROR),
        (0, 3, None, logging.CRITICAL),
        (2, 1, None, logging.INFO),
        (0, 1, "DEBUG", logging.DEBUG),
    ],
)
def test_levels(verbose: int, quiet: int, level: str | None, expected: int) -> None:
    args = argparse.Namespace(verbose=verbose, quiet=quiet, log_level=level)
    assert chosen_level(args) == expected


def _record(**extra: object) -> logging.LogRecord:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    return logging.getLogger("aioamp.rpmsg").makeRecord(
        "aioamp.rpmsg", logging.ERROR, __file__, 1, "%s: bad", ("bus0",), exc_info, extra=extra
    )


def test_json_lines_carry_the_extra_fields_and_the_traceback() -> None:
    doc = json.loads(JsonFormatter().format(_record(bus="bus0", endpoint=1024, obj=Path("/x"))))
    assert (doc["level"], doc["logger"], doc["message"]) == ("ERROR", "aioamp.rpmsg", "bus0: bad")
    assert (doc["bus"], doc["endpoint"], doc["obj"], doc["pid"]) == (
        "bus0",
        1024,
        "/x",
        os.getpid(),
    )
    assert "ValueError: boom" in doc["exception"] and doc["time"].endswith("+00:00")


def test_text_lines_name_a_foreign_process() -> None:
    record = _record()
    record.exc_info = None
    assert TextFormatter().format(record).endswith(" ERROR aioamp.rpmsg: bus0: bad")
    record.process = os.getpid() + 1
    assert TextFormatter().format(record).endswith(f"bus0: bad [pid {os.getpid() + 1}]")


def test_a_command_run_in_process_leaves_logging_as_it_was(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    assert main(["-vv", "fw", "build-sample", str(tmp_path / "x.elf")]) == 0
    assert main(["--log-json", "fw", "inspect", str(tmp_path / "missing.elf")]) == 2
    assert root.handlers == handlers and root.level == level
