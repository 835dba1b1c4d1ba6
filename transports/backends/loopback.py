"""In-process loopback transport: a connected host end and remote end over one bytearray.

Theory of operation: a :class:`LoopbackLink` owns one memory region laid out by
:class:`~transports.virtio.layout.SharedLayout` (resource table, two vrings, buffer pool) and two
doorbells, one per direction. A kick from one end rings the other end's doorbell; the
waiting bus wakes and rescans its rings. Doorbells count and coalesce: many kicks before the
waiter runs cost one wake-up. Closing either end closes the link, so the survivor's waits fail
with :class:`TransportClosedError`, as if the peer had died.

Both ends must run on the same event loop (anyio primitives; no threads).

``loop://NAME`` URLs: both ends opened under one name share one :class:`LoopbackLink`. Query
options: ``num``, ``align``, ``buffer_size``, ``buffers`` (the layout is made by whichever end
opens first; the second end may repeat the options but not contradict them). Any other option,
an option given twice or an invalid value is refused. The name is forgotten once both ends
have been handed out, so it can be reused.
"""

from __future__ import annotations

from urllib.parse import SplitResult

import attrs

from ..base import DoorbellTransport, Role, Transport
from ..doorbell import Doorbell
from ..errors import RoleClashError, TransportURLError
from ..url import LAYOUT_OPTIONS, layout_from_query, refuse_unknown
from ..virtio.layout import SharedLayout
from ..virtio.memory import DeviceMemory, Region
from ..virtio.vdev import single_vdev_view


class LoopbackLink:
    """The shared state of a loopback pair: memory plus one doorbell per direction."""

    def __init__(self, layout: SharedLayout | None = None, *, name: str = "loopback") -> None:
        self.layout = layout or SharedLayout()
        self.name = name
        self.buffer = bytearray(self.layout.total_size)
        table = self.layout.table()
        self.buffer[: len(table)] = table
        self.region = Region(self.layout.base_da, memoryview(self.buffer), name)
        self.bells: dict[Role, Doorbell] = {"host": Doorbell(), "remote": Doorbell()}
        self.ends: dict[Role, LoopbackTransport] = {}

    def end(self, role: Role) -> LoopbackTransport:
        """The transport for ``role``; each end exists once."""
        if role in self.ends:
            raise ValueError(f"loopback {self.name!r}: the {role} end is already open")
        end = LoopbackTransport(self, role)
        self.ends[role] = end
        return end

    def close(self, by: Role) -> None:
        other: Role = "remote" if by == "host" else "host"
        self.bells[by].close(f"loopback {self.name!r}: this end was closed")
        self.bells[other].close(f"loopback {self.name!r}: the {by} end closed the link")


class LoopbackTransport(DoorbellTransport):
    """One end of a :class:`LoopbackLink`."""

    def __init__(self, link: LoopbackLink, role: Role) -> None:
        layout = link.layout
        memory = DeviceMemory([link.region])
        vdev = single_vdev_view(memory.view(layout.base_da, layout.table_size))
        pool = Region(
            layout.base_da + layout.pool_offset,
            link.region.mem[layout.pool_offset : layout.pool_offset + layout.pool_size],
            f"{link.name}-pool",
        )
        super().__init__(role=role, memory=memory, vdev=vdev, pool=pool, inbox=link.bells[role])
        self.link = link
        self._outbox = link.bells["remote" if role == "host" else "host"]
        self.buffer_size = layout.buffer_size

    def kick(self, vq: int) -> None:
        self._check_open()
        self.stats.kicks_sent += 1
        self._outbox.ring()

    def kick_pending(self) -> bool:
        """Whether the peer has not yet taken our last kick (a new one would coalesce)."""
        return self._outbox.pending

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self.link.close(self.role)
            self._close_reason = f"loopback {self.link.name!r}: closed"


def loopback_pair(
    layout: SharedLayout | None = None, *, name: str = "loopback"
) -> tuple[LoopbackTransport, LoopbackTransport]:
    """A connected ``(host, remote)`` pair over fresh memory."""
    link = LoopbackLink(layout, name=name)
    return link.end("host"), link.end("remote")


_PENDING: dict[str, LoopbackLink] = {}


@attrs.frozen
class LoopConfig:
    """Everything a ``loop://`` URL says, validated."""

    name: str
    layout: SharedLayout
    explicit_layout: bool  # some layout option was given


def loop_config(parts: SplitResult, query: dict[str, str]) -> LoopConfig:
    refuse_unknown("loop://", parts, query, LAYOUT_OPTIONS)
    name = parts.netloc + parts.path
    if not name:
        raise TransportURLError("loop:// needs a name, e.g. loop://demo")
    explicit = any(key in query for key in LAYOUT_OPTIONS)
    return LoopConfig(name, layout_from_query(query), explicit)


async def open_loopback_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    config = loop_config(parts, query)
    link = _PENDING.get(config.name)
    if link is None:
        link = _PENDING[config.name] = LoopbackLink(config.layout, name=config.name)
    elif config.explicit_layout and config.layout != link.layout:
        raise TransportURLError(
            f"loop://{config.name}: the options contradict the layout of the end opened first"
        )
    if role in link.ends:
        raise RoleClashError(
            f"loop://{config.name}: role clash, the {role} end is already open "
            "(one end must be host and the other remote)"
        )
    end = link.end(role)
    if len(link.ends) == 2:
        del _PENDING[config.name]
    return end
