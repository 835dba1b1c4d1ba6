"""Event-loop choice for the CLI and benchmarks (the library itself never picks one)."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


#: Names the loop the commands run on; unset: uvloop when installed, else asyncio.
EVENT_LOOP_ENV = "AIOAMP_EVENT_LOOP"
EVENT_LOOPS = ("asyncio", "uvloop", "trio")


class EventLoopChoiceError(ValueError):
    """``AIOAMP_EVENT_LOOP`` names a loop this install cannot run: a usage error."""


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def chosen_loop() -> str:
    """The loop the commands run on: ``AIOAMP_EVENT_LOOP`` (asyncio, uvloop or trio: the
    library runs on all, through anyio), else uvloop when installed, else asyncio."""
    name = os.environ.get(EVENT_LOOP_ENV, "")
    if not name:
        return "uvloop" if uvloop_available() else "asyncio"
    if name not in EVENT_LOOPS:
        raise EventLoopChoiceError(
            f"{EVENT_LOOP_ENV}={name!r} is not one of {', '.join(EVENT_LOOPS)}"
        )
    missing = {"uvloop": not uvloop_available(), "trio": find_spec("trio") is None}
    if missing.get(name):
        extra = " (pip install 'aioamp[fast]')" if name == "uvloop" else ""
        raise EventLoopChoiceError(f"{EVENT_LOOP_ENV}={name}: {name} is not installed{extra}")
    return name


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """``exc`` itself, or the exceptions inside it if task groups wrapped it in (possibly
    nested) exception groups: what the CLI reports on."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaf_exceptions(inner)]
    return [exc]


class Terminated(Exception):
    """SIGTERM or SIGINT arrived; the command was cancelled and cleaned up."""


async def _until_signal(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func`` but cancel it cleanly on SIGTERM/SIGINT, so transports close and remove
    what they created (a shm object, a socket) instead of dying half-way."""
    result: list[T] = []
    got: list[int] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    got.append(signum)
                    tg.cancel_scope.cancel()
                    return

        async def main() -> None:
            result.append(await func(*args))
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(main)
    if got:
        raise Terminated(signal.Signals(got[0]).name)
    return result[0]


def run(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(*args)`` on the :func:`chosen_loop`; SIGTERM and SIGINT cancel it cleanly
    and raise :class:`Terminated`."""
    loop = chosen_loop()
    if loop == "trio":
        return anyio.run(_until_signal, func, *args, backend="trio")
    options = {"use_uvloop": loop == "uvloop"}
    return anyio.run(_until_signal, func, *args, backend="asyncio", backend_options=options)
