"""Logging for the ``aioamp`` command: the library only logs (under ``aioamp.*``), the command
configures where the records go.

``-v`` shows INFO (the transitions of processors, channels, links), ``-vv`` DEBUG, ``-q``
only errors; ``--log-level`` names a level outright; ``--log-json`` writes one JSON object
per record with the record's ``extra`` fields (``bus``, ``processor``, ``reason`` ...). All of
it goes to stderr, so stdout stays the command's own output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: What every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def add_logging_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``-v``, ``-q``, ``--log-level`` and ``--log-json`` on ``parser``. The top-level parser
    has the ``defaults``; each command's copy leaves them alone unless given
    (``aioamp -v ping`` and ``aioamp ping -v`` both work)."""
    group = parser.add_argument_group("logging (to stderr)")

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more log records: -v INFO, -vv DEBUG",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=default(0),
        help="errors only; no progress bars, status lines or per-message lines",
    )
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        default=default(None),
        metavar="LEVEL",
        help=f"log from this level up ({', '.join(LEVELS)}); overrides -v/-q "
        "(without either: WARNING)",
    )
    group.add_argument(
        "--log-json",
        action="store_true",
        default=default(False),
        help="one JSON object per record, with its extra fields",
    )


def chosen_level(args: argparse.Namespace) -> int:
    """The level ``args`` ask for: ``--log-level``, else WARNING moved by ``-v`` / ``-q``."""
    if args.log_level:
        level: int = logging.getLevelNamesMapping()[args.log_level]
        return level
    steps: int = args.verbose - args.quiet
    return max(logging.DEBUG, min(logging.CRITICAL, logging.WARNING - 10 * steps))


class TextFormatter(logging.Formatter):
    """``12:00:01.234 WARNING aioamp.rpmsg: host: ...``; a record from another process (a
    ``process=True`` core's) says whose."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if record.process is not None and record.process != os.getpid():
            text += f" [pid {record.process}]"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, pid, the
    record's extra fields under their own names, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in doc:
                doc[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (as Python's last-resort
    handler does), not to the stream that was there when logging was configured."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


@contextlib.contextmanager
def logging_configured(args: argparse.Namespace) -> Iterator[None]:
    """One handler on the root logger, at the level ``args`` choose, for the time of one
    command: records of every library logger, of a core in its own process (re-emitted
    here) and of third-party code alike (without a handler, Python's last-resort one would
    print bare warnings). The root logger is as it was afterwards, so ``main()`` called
    in-process (tests, an embedding program) leaves no handler behind."""
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if args.log_json else TextFormatter())
    level = root.level
    root.addHandler(handler)
    root.setLevel(chosen_level(args))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
