"""Strict parsing of transport URL query options (``shm://demo?num=64&listen=1``).

Theory of operation: a URL is the user's whole configuration, typed on a command line, so a
typo must not be ignored. The query is split once (an option given twice is refused: which one
would win?); each scheme then declares the options it knows (:func:`refuse_unknown`, which lists
them in its message) and reads each through a typed getter that names the option and the value
it refused. Every error is a :class:`TransportURLError` (a ``ValueError``). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from urllib.parse import SplitResult, parse_qsl

from .errors import TransportURLError
from .virtio.layout import SharedLayout, default_buffer_count

#: The options of :func:`layout_from_query`, shared by ``loop://`` and ``shm://``.
LAYOUT_OPTIONS = ("num", "align", "buffer_size", "buffers")
#: The rpmsg header's ``len`` is 16 bits: a larger buffer could never be filled.
MAX_BUFFER_SIZE = 0x10000
#: ``sizeof(sockaddr_un.sun_path)`` on Linux, less its terminating NUL.
MAX_SOCKET_PATH = 107

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_query(query: str) -> dict[str, str]:
    """``a=1&b=2`` as a dict; a key given twice is refused, ``a`` alone reads as ``a=``."""
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:
            raise TransportURLError(f"option {key!r} is given twice")
        options[key] = value
    return options


def refuse_unknown(
    scheme: str, parts: SplitResult, query: dict[str, str], known: Collection[str]
) -> None:
    """Refuse options ``scheme`` does not know (naming the known ones) and a ``#fragment``."""
    unknown = sorted(set(query) - set(known))
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        s = "s" if len(unknown) > 1 else ""
        raise TransportURLError(
            f"{scheme}: unknown option{s} {', '.join(map(repr, unknown))} (known: {listed})"
        )
    if parts.fragment:
        raise TransportURLError(f"{scheme}: URLs take no #fragment ({parts.fragment!r})")


def int_option(query: dict[str, str], key: str, default: int) -> int:
    """An integer (decimal, or with a 0x / 0o / 0b prefix)."""
    raw = query.get(key)
    if raw is None:
        return default
    try:
        return int(raw, 0)
    except ValueError:
        raise TransportURLError(f"option {key}={raw!r} is not an integer") from None


def seconds_option(query: dict[str, str], key: str, default: float) -> float:
    """A finite, non-negative number of seconds."""
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TransportURLError(f"option {key}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TransportURLError(f"option {key}={raw!r} must be a finite number >= 0")
    return value


def flag_option(query: dict[str, str], key: str) -> bool | None:
    """A boolean (1/true/yes/on or 0/false/no/off), None when absent."""
    raw = query.get(key)
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise TransportURLError(f"option {key}={raw!r} is not a boolean (1/0, true/false)")


def socket_option(query: dict[str, str], key: str, default: str) -> str:
    """A unix socket path: non-empty and short enough for ``sun_path``."""
    path = query.get(key, default)
    size = len(path.encode("utf-8", "surrogateescape"))
    if not path or "\0" in path or size > MAX_SOCKET_PATH:
        raise TransportURLError(
            f"socket path {path!r} must be 1..{MAX_SOCKET_PATH} bytes without NUL"
        )
    return path


def layout_from_query(query: dict[str, str]) -> SharedLayout:
    """A :class:`SharedLayout` from the :data:`LAYOUT_OPTIONS`."""
    num = int_option(query, "num", 256)
    buffer_size = int_option(query, "buffer_size", 512)
    if buffer_size > MAX_BUFFER_SIZE:
        raise TransportURLError(f"option buffer_size={buffer_size} is over {MAX_BUFFER_SIZE}")
    count = int_option(query, "buffers", default_buffer_count(num))
    if num > 0 and count > 2 * num:
        raise TransportURLError(
            f"option buffers={count} is over 2 x num = {2 * num}: the rest would never be used"
        )
    try:
        return SharedLayout(
            num=num,
            align=int_option(query, "align", 4096),
            buffer_size=buffer_size,
            buffer_count=count,
        )
    except ValueError as exc:
        raise TransportURLError(f"bad layout option: {exc}") from None
