"""``shm://NAME`` and ``openamp:`` URLs for :func:`transports.backends.shm.open_shm`.

Common query options: ``listen=1`` (be the socket server) or ``listen=0`` (connect to one;
default: whichever side starts first serves), ``socket=PATH`` (the doorbell socket),
``timeout=SECONDS`` (how long a client retries connecting).
``shm://NAME`` also takes ``num``, ``align``, ``buffer_size``, ``buffers``.
``openamp:`` uses OpenAMP's Linux machine layout, byte for byte, with ``shm=NAME`` (default
``openamp.shm``) and a default socket ``/tmp/openamp.event.0``.
Any other option, an option given twice or an invalid value is refused
(:class:`~transports.errors.TransportURLError`).
"""

from __future__ import annotations

from urllib.parse import SplitResult

import attrs

from ...base import Role, Transport
from ...errors import TransportURLError
from ...url import (
    LAYOUT_OPTIONS,
    flag_option,
    layout_from_query,
    refuse_unknown,
    seconds_option,
    socket_option,
)
from ...virtio.layout import OPENAMP_LAYOUT, SharedLayout
from ...virtio.vdev import LINUX_QUIRKS, OPENAMP_QUIRKS, VirtioQuirks
from .transport import open_shm, shm_path

OPENAMP_SHM = "openamp.shm"
OPENAMP_SOCKET = "/tmp/openamp.event.0"
_LINK_OPTIONS = ("listen", "socket", "timeout")


@attrs.frozen
class ShmConfig:
    """Everything an ``shm://`` or ``openamp:`` URL says, validated."""

    name: str
    layout: SharedLayout
    listen: bool | None
    socket: str
    timeout: float
    quirks: VirtioQuirks
    #: Whether the peer must say hello (see :func:`~transports.backends.shm.open_shm`): only where
    #: both ends are aioamp; OpenAMP's C code sends no hello.
    handshake: bool
    #: ``shm`` or ``openamp``: the link logs as ``aioamp.transport.SCHEME``.
    scheme: str


def _config(
    query: dict[str, str], name: str, layout: SharedLayout, socket: str, *, openamp: bool
) -> ShmConfig:
    shm_path(name)  # validates the name
    return ShmConfig(
        name=name,
        layout=layout,
        listen=flag_option(query, "listen"),
        socket=socket_option(query, "socket", socket),
        timeout=seconds_option(query, "timeout", 10.0),
        quirks=OPENAMP_QUIRKS if openamp else LINUX_QUIRKS,
        handshake=not openamp,
        scheme="openamp" if openamp else "shm",
    )


def shm_config(parts: SplitResult, query: dict[str, str]) -> ShmConfig:
    refuse_unknown("shm://", parts, query, _LINK_OPTIONS + LAYOUT_OPTIONS)
    name = (parts.netloc + parts.path).strip("/")
    if not name:
        raise TransportURLError("shm:// needs an object name, e.g. shm://demo")
    socket = f"/tmp/aioamp-{name}.sock"
    return _config(query, name, layout_from_query(query), socket, openamp=False)


def openamp_config(parts: SplitResult, query: dict[str, str]) -> ShmConfig:
    refuse_unknown("openamp:", parts, query, (*_LINK_OPTIONS, "shm"))
    if parts.netloc or parts.path:
        raise TransportURLError(
            f"openamp: takes no name ({parts.netloc + parts.path!r}); use openamp:?shm=NAME"
        )
    name = query.get("shm", OPENAMP_SHM)
    return _config(query, name, OPENAMP_LAYOUT, OPENAMP_SOCKET, openamp=True)


async def _open(config: ShmConfig, role: Role) -> Transport:
    return await open_shm(
        config.name,
        role=role,
        layout=config.layout,
        listen=config.listen,
        socket_path=config.socket,
        connect_timeout=config.timeout,
        quirks=config.quirks,
        handshake=config.handshake,
        scheme=config.scheme,
    )


async def open_shm_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    return await _open(shm_config(parts, query), role)


async def open_openamp_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    return await _open(openamp_config(parts, query), role)
