"""aioamp benchmarks: rpmsg over loopback and shared memory, side by side with the IPC paths
users would pick instead, measured in one run so that only same-run ratios are compared.

Run ``python -m benchmarks`` or ``aioamp bench`` (``--quick`` for a < 1 minute pass).
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks`` (imports lazily: plotting is heavy)."""
    from .runner import main as run_main

    return run_main(argv)
