"""``loop://NAME`` URLs: both ends opened under one name share one :class:`LoopbackLink`.

Query options: ``num``, ``align``, ``buffer_size``, ``buffers`` (the layout is made by whichever
end opens first; the second end may repeat the options but not contradict them). Any other
option, an option given twice or an invalid value is refused. The name is forgotten once both
ends have been handed out, so it can be reused.
"""

from __future__ import annotations

from urllib.parse import SplitResult

import attrs

from .base import Role, Transport
from .errors import RoleClashError, TransportURLError
from .layout import SharedLayout
from .loopback import LoopbackLink
from .url import LAYOUT_OPTIONS, layout_from_query, refuse_unknown

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
