"""``shm://NAME`` and ``openamp:`` URLs for :func:`transports.shm.open_shm`.

Common query options: ``listen=1`` (be the socket server) or ``listen=0`` (connect to one;
default: whichever side starts first serves), ``socket=PATH`` (the doorbell socket),
``timeout=SECONDS`` (how long a client retries connecting).
``shm://NAME`` also takes ``num``, ``align``, ``buffer_size``, ``buffers``.
``openamp:`` uses OpenAMP's Linux machine layout, byte for byte, with ``shm=NAME`` (default
``openamp.shm``) and a default socket ``/tmp/openamp.event.0``.
"""

from __future__ import annotations

from urllib.parse import SplitResult

from .base import Role, Transport
from .errors import TransportError
from .layout import OPENAMP_LAYOUT
from .registry import layout_from_query
from .shm import open_shm
from .vdev import OPENAMP_QUIRKS

OPENAMP_SHM = "openamp.shm"
OPENAMP_SOCKET = "/tmp/openamp.event.0"


def _flag(query: dict[str, str], key: str) -> bool | None:
    value = query.get(key)
    if value is None:
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise TransportError(f"option {key}={value!r} is not a boolean")


def _number(query: dict[str, str], key: str, default: float) -> float:
    try:
        return float(query.get(key, default))
    except ValueError:
        raise TransportError(f"option {key}={query[key]!r} is not a number") from None


async def open_shm_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    name = (parts.netloc + parts.path).strip("/")
    if not name:
        raise TransportError("shm:// needs an object name, e.g. shm://demo")
    layout = layout_from_query(query, "shm")
    return await open_shm(
        name,
        role=role,
        layout=layout,
        listen=_flag(query, "listen"),
        socket_path=query.get("socket"),
        connect_timeout=_number(query, "timeout", 10.0),
    )


async def open_openamp_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    return await open_shm(
        query.get("shm", OPENAMP_SHM),
        role=role,
        layout=OPENAMP_LAYOUT,
        listen=_flag(query, "listen"),
        socket_path=query.get("socket", OPENAMP_SOCKET),
        connect_timeout=_number(query, "timeout", 10.0),
        quirks=OPENAMP_QUIRKS,
    )
