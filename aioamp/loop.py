"""Event-loop choice for the CLI and benchmarks (the library itself never picks one)."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


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


def run(func: Callable[..., Awaitable[T]], *args: Any, use_uvloop: bool | None = None) -> T:
    """Run ``func(*args)`` on asyncio, with uvloop when available (or as asked); SIGTERM and
    SIGINT cancel it cleanly and raise :class:`Terminated`."""
    if use_uvloop is None:
        use_uvloop = uvloop_available()
    return anyio.run(
        _until_signal, func, *args, backend="asyncio", backend_options={"use_uvloop": use_uvloop}
    )
