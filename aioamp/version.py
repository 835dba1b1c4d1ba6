"""``aioamp --version``: the library version, the vring implementation that is active and the
event loop the commands run on; what a bug report needs first."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

from . import __version__
from .loop import EVENT_LOOP_ENV, EventLoopChoiceError, chosen_loop, uvloop_available


def library_version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    try:
        return metadata.version("aioamp")
    except metadata.PackageNotFoundError:
        return __version__


def accel_built() -> bool:
    """Whether the C vring extension (``transports._vring_accel``) is built for this Python."""
    return importlib.util.find_spec("transports._vring_accel") is not None


def vring_implementation() -> str:
    """Which split-vring classes run, and why (``transports.virtio.vring.ACCELERATED``)."""
    from transports.virtio.vring import ACCELERATED

    if ACCELERATED:
        return "C accelerator (transports._vring_accel)"
    if not accel_built():
        return "pure Python (the C extension is not built: no compiler at install time?)"
    forced = os.environ.get("AIOAMP_PURE_PYTHON", "")
    if forced not in ("", "0"):
        return f"pure Python (AIOAMP_PURE_PYTHON={forced})"
    return "pure Python (the C extension is built but did not import)"


def message_path() -> str:
    """Whether the per-message path runs compiled by mypyc (``transports._compiled``)."""
    from transports import _compiled

    if _compiled.active():
        return "compiled (mypyc)"
    if _compiled.pure_reason is not None:
        return f"pure Python ({_compiled.pure_reason})"
    return "pure Python (not compiled at install time: no compiler or no mypyc?)"


def event_loop() -> str:
    """The loop the commands use: ``AIOAMP_EVENT_LOOP``, else uvloop when installed (extra
    ``fast``), else asyncio's."""
    try:
        loop = chosen_loop()
    except EventLoopChoiceError as exc:
        return f"none: {exc}"
    chosen = f" ({EVENT_LOOP_ENV})" if os.environ.get(EVENT_LOOP_ENV) else ""
    if loop == "trio":
        return f"trio {metadata.version('trio')} (through anyio){chosen}"
    if loop == "uvloop":
        return f"uvloop {metadata.version('uvloop')} (asyncio, through anyio){chosen}"
    if uvloop_available():
        return f"asyncio (through anyio){chosen}"
    return "asyncio (through anyio; uvloop is not installed: pip install 'aioamp[fast]')"


def version_report() -> str:
    return "\n".join(
        [
            f"aioamp {library_version()}",
            f"vrings: {vring_implementation()}",
            f"per-message path: {message_path()}",
            f"event loop: {event_loop()}",
            f"python: {platform.python_implementation()} {platform.python_version()} "
            f"on {platform.system()} {platform.machine()}",
        ]
    )


class VersionAction(argparse.Action):
    """``--version``: computed when asked for (it imports the vrings), printed to stdout."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show the version, the vring implementation and the event loop")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(version_report())
        parser.exit()
