"""Running a simulated core's firmware program in its own OS process.

Theory of operation: with ``SimPlatform(process=True)`` the simulated DDR (and internal
memories) live in a POSIX shared-memory object instead of a bytearray. The host creates it,
maps it and unlinks its name at once (the memory lives as long as a mapping or descriptor does,
so nothing can be left behind in /dev/shm), then starts ``python -m platforms.sim.child`` for
each boot, handing it the object's descriptor and one end of a socketpair. The child maps the
memory at the device addresses the host programmed (the simulated IOMMU) and runs the program:
host and remote share only memory and a doorbell, as on a real SoC.

The doorbell carries frames ``<BI`` (kind, value): KICK with a notify id in either direction;
CRASH with the length of a JSON ``{"kind", "detail"}`` that follows; LOG (child to host) with
the length of a JSON log record that follows. The child exiting without being stopped (a crash,
``kill -9``) is seen as EOF and reported as a crash.

Logging: the child has no handlers of its own. It forwards every record at or above the
lowest level any logger of the host lets through (:func:`forwarded_level`, handed over at
start) as a LOG frame, and the host re-emits it through the logger of the same name
(:func:`emit_record`), so the host's handlers, levels and filters apply, as if the core ran
in-process. The record keeps the child's pid in ``process`` and its ``extra`` fields (``bus``,
``processor``, ``reason`` ...: str, int, float, bool or None values) under their names.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from typing import Any

FRAME = struct.Struct("<BI")
KICK = 1
CRASH = 2
LOG = 3
#: A LOG frame's body at most: longer texts are cut (see :func:`log_frame`).
MAX_LOG_BODY = 0x10000
_MAX_TEXT = 0x2000  # characters of msg / exc_text / stack_info forwarded
#: The LogRecord attributes forwarded (JSON-able ones; ``msg`` goes already formatted).
_RECORD_FIELDS = (
    "name",
    "levelno",
    "levelname",
    "pathname",
    "filename",
    "module",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "process",
    "processName",
    "taskName",
)
_TEXT_FIELDS = ("msg", "exc_text", "stack_info")
#: What every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SCALARS = (str, int, float, bool, type(None))


def kick_frame(notifyid: int) -> bytes:
    return FRAME.pack(KICK, notifyid)


def crash_frame(kind: str, detail: str) -> bytes:
    body = json.dumps({"kind": kind, "detail": detail}).encode()
    return FRAME.pack(CRASH, len(body)) + body


def forwarded_level() -> int:
    """The lowest level any logger of this process lets through: the child forwards records
    from there up; each is then filtered again by its own logger's level here."""
    levels = [logging.getLogger().getEffectiveLevel()]
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels.append(logger.level)
    return min(levels)


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + " [cut]"


def log_frame(record: logging.LogRecord) -> bytes:
    """The LOG frame of ``record`` (arguments merged into the message, the exception text
    formatted here, where the traceback lives)."""
    doc: dict[str, Any] = {key: getattr(record, key, None) for key in _RECORD_FIELDS}
    doc["msg"] = record.getMessage()
    exc_text = record.exc_text
    if record.exc_info and not exc_text:
        exc_text = logging.Formatter().formatException(record.exc_info)
    doc["exc_text"], doc["stack_info"] = exc_text, record.stack_info
    doc["extra"] = {
        key: _cut(value) if isinstance(value, str) else value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRS and isinstance(value, _SCALARS)
    }
    for key in _TEXT_FIELDS:
        if isinstance(doc[key], str):
            doc[key] = _cut(doc[key])
    body = json.dumps(doc, default=str).encode()
    if len(body) > MAX_LOG_BODY:  # escapes blew it up: keep the metadata, say so
        doc.update(msg=f"(a log record of {len(body)} bytes, too long to forward)")
        doc.update(exc_text=None, stack_info=None, extra={})
        body = json.dumps(doc, default=str).encode()
    return FRAME.pack(LOG, len(body)) + body


def _extra(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``extra`` fields of a forwarded record, checked: plain names that shadow no
    LogRecord attribute or method, scalar values (the child is not trusted to set more)."""
    extra = doc.get("extra", {})
    if not isinstance(extra, dict):
        raise TypeError("extra is not an object")
    for key, value in extra.items():
        if not key.isidentifier() or key.startswith("_") or key in _RECORD_ATTRS:
            raise ValueError(f"extra field {key!r} is not allowed")
        if hasattr(logging.LogRecord, key) or not isinstance(value, _SCALARS):
            raise TypeError(f"extra field {key!r} is not a plain value")
    return extra


def emit_record(doc: dict[str, Any]) -> None:
    """Re-emit a forwarded record through the logger of its name, if that logger is enabled
    for its level (``Logger.handle`` itself does not check). Raises ValueError / TypeError /
    KeyError when ``doc`` is not one."""
    fields = {key: doc[key] for key in (*_RECORD_FIELDS, *_TEXT_FIELDS) if key in doc}
    for key in ("msg", "exc_text", "stack_info"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise TypeError(f"{key} is not a string")
    if not isinstance(fields["name"], str) or not isinstance(fields["levelno"], int):
        raise TypeError("not a log record")
    record = logging.makeLogRecord({**_extra(doc), **fields, "args": None, "exc_info": None})
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


class FrameReader:
    """Splits a byte stream into frames; calls ``on_kick(notifyid)`` / ``on_crash(kind,
    detail)`` / ``on_log(record dict)``. Malformed input is counted, never raised."""

    MAX_BODY = 4096

    def __init__(
        self,
        on_kick: Callable[[int], None],
        on_crash: Callable[[str, str], None],
        on_log: Callable[[dict[str, Any]], None] = emit_record,
    ) -> None:
        self._buf = bytearray()
        self._on_kick = on_kick
        self._on_crash = on_crash
        self._on_log = on_log
        self.malformed = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= FRAME.size:
            kind, value = FRAME.unpack_from(buf, 0)
            if kind == KICK:
                del buf[: FRAME.size]
                self._on_kick(value)
            elif (kind == CRASH and value <= self.MAX_BODY) or (
                kind == LOG and value <= MAX_LOG_BODY
            ):
                if len(buf) < FRAME.size + value:
                    return
                body = bytes(buf[FRAME.size : FRAME.size + value])
                del buf[: FRAME.size + value]
                try:
                    doc = json.loads(body)
                    if kind == LOG:
                        self._on_log(doc)
                    else:
                        self._on_crash(str(doc["kind"]), str(doc["detail"]))
                except (ValueError, KeyError, TypeError):
                    self.malformed += 1
            else:
                self.malformed += 1
                buf.clear()
