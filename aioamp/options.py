"""Typed command-line values: argparse refuses a bad one with a usage error (exit 2), before
anything runs, instead of a traceback from deep inside a command."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from transports import TransportError
from transports.registry import check_transport_url

from .exits import UsageError

__all__ = ["UsageError", "integer", "seconds", "transport_url"]


def seconds(text: str) -> float:
    """A finite number of seconds >= 0 (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds >= 0")
    return value


def integer(minimum: int) -> Callable[[str], int]:
    """An integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def transport_url(text: str) -> str:
    """A transport URL whose scheme and options are all known and valid (checked without
    opening anything)."""
    try:
        check_transport_url(text)
    except TransportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
