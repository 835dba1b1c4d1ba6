"""Event-loop choice for the CLI and benchmarks (the library itself never picks one)."""

from __future__ import annotations

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


def run(func: Callable[..., Awaitable[T]], *args: Any, use_uvloop: bool | None = None) -> T:
    """Run ``func(*args)`` on asyncio, with uvloop when available (or as asked)."""
    if use_uvloop is None:
        use_uvloop = uvloop_available()
    return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": use_uvloop})
