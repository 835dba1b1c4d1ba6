"""``loop://NAME`` URLs: both ends opened under one name share one :class:`LoopbackLink`.

Query options: ``num``, ``align``, ``buffer_size``, ``buffers`` (applied by whichever end opens
first). The name is forgotten once both ends have been handed out, so it can be reused.
"""

from __future__ import annotations

from urllib.parse import SplitResult

from .base import Role, Transport
from .errors import TransportError
from .loopback import LoopbackLink
from .registry import layout_from_query

_PENDING: dict[str, LoopbackLink] = {}


async def open_loopback_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    name = parts.netloc + parts.path
    if not name:
        raise TransportError("loop:// needs a name, e.g. loop://demo")
    link = _PENDING.get(name)
    if link is None:
        link = _PENDING[name] = LoopbackLink(layout_from_query(query, "loop"), name=name)
    end = link.end(role)
    if len(link.ends) == 2:
        del _PENDING[name]
    return end
