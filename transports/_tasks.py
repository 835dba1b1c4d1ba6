"""Task-group helpers that never hand an ExceptionGroup to a public API's caller.

Theory of operation: anyio's task groups wrap whatever a task raised, even a single error and
even the body's own exception, in an ExceptionGroup. Our public APIs promise one exception.
:func:`raise_one` picks the exception to raise from a group deliberately: the body's own
exception when it is there, else an interrupt (KeyboardInterrupt, SystemExit), else the first
error. Any other exception in the group is logged with its traceback and attached to the
chosen one as a note, so nothing is swallowed. :func:`first_of` waits for whichever of several
waits ends first, and raises like that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import anyio

#: Shared by every package's task groups (rpmsg buses, remoteproc, platforms); the records
#: name the exceptions, which say where they come from.
log = logging.getLogger("aioamp.transport")


def _leaves(exc: BaseException, keep: BaseException | None) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup) and exc is not keep:
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner, keep)]
    return [exc]


def raise_one(group: BaseExceptionGroup[BaseException], *, keep: BaseException | None) -> NoReturn:
    """Raise one exception of ``group`` (``keep``, the body's own exception, when present)
    instead of the group; the others are logged and noted on it."""
    leaves = _leaves(group, keep)
    cancelled = anyio.get_cancelled_exc_class()
    interrupts = [e for e in leaves if not isinstance(e, Exception | cancelled)]
    errors = [e for e in leaves if isinstance(e, Exception)]
    if keep is not None and any(e is keep for e in leaves):
        chosen = keep
    else:
        chosen = (interrupts or errors or leaves)[0]
    for other in leaves:
        if other is not chosen and not isinstance(other, cancelled):
            log.error("also raised at the same time as %r", chosen, exc_info=other)
            chosen.add_note(f"also raised at the same time: {other!r}")
    context = chosen.__context__
    try:
        raise chosen
    finally:
        chosen.__context__ = context  # not the group: raising it here would chain it


async def first_of(*waits: Callable[[], Awaitable[object]]) -> None:
    """Run ``waits`` concurrently until the first one returns, then cancel the others. An
    exception from any of them propagates alone, never inside an ExceptionGroup."""
    try:
        async with anyio.create_task_group() as tg:

            async def run(wait: Callable[[], Awaitable[object]]) -> None:
                await wait()
                tg.cancel_scope.cancel()

            for wait in waits:
                tg.start_soon(run, wait)
    except BaseExceptionGroup as group:
        raise_one(group, keep=None)
