"""``loop://NAME`` URLs: both ends opened under one name share one :class:`LoopbackLink`.

Query options: ``num``, ``align``, ``buffer_size``, ``buffers`` (applied by whichever end opens
first). The name is forgotten once both ends have been handed out, so it can be reused.
"""

from __future__ import annotations

from urllib.parse import SplitResult

from .base import Role, Transport
from .errors import TransportError
from .layout import SharedLayout, default_buffer_count
from .loopback import LoopbackLink

_PENDING: dict[str, LoopbackLink] = {}


def _layout(query: dict[str, str]) -> SharedLayout:
    try:
        num = int(query.get("num", "256"), 0)
        return SharedLayout(
            num=num,
            align=int(query.get("align", "4096"), 0),
            buffer_size=int(query.get("buffer_size", "512"), 0),
            buffer_count=int(query.get("buffers", str(default_buffer_count(num))), 0),
        )
    except ValueError as exc:
        raise TransportError(f"bad loop:// option: {exc}") from exc


async def open_loopback_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    name = parts.netloc + parts.path
    if not name:
        raise TransportError("loop:// needs a name, e.g. loop://demo")
    link = _PENDING.get(name)
    if link is None:
        link = _PENDING[name] = LoopbackLink(_layout(query), name=name)
    end = link.end(role)
    if len(link.ends) == 2:
        del _PENDING[name]
    return end
