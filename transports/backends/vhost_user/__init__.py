"""``vhost-user:PATH``: the virtio rpmsg device over the vhost-user protocol, so a virtual
machine's kernel, or User-Mode Linux's ``virtio_uml``, is the rpmsg host of an aioamp remote
(:mod:`.server`, the backend), and aioamp can be the host of any vhost-user rpmsg device
(:mod:`.client`, the frontend).

The protocol (:mod:`.protocol`) and the backend's state machine (:mod:`.backend`) are pure;
this package's names are re-exported lazily, so importing them loads no socket or mmap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import VhostUserFrontend, connect_vhost_user
    from .protocol import VhostUserError, VhostUserProtocolError
    from .server import BackendStatistics, VhostUserBackend, listen_vhost_user

_EXPORTS = {
    "BackendStatistics": ".server",
    "VhostUserBackend": ".server",
    "VhostUserError": ".protocol",
    "VhostUserFrontend": ".client",
    "VhostUserProtocolError": ".protocol",
    "connect_vhost_user": ".client",
    "listen_vhost_user": ".server",
}
__all__ = [
    "BackendStatistics",
    "VhostUserBackend",
    "VhostUserError",
    "VhostUserFrontend",
    "VhostUserProtocolError",
    "connect_vhost_user",
    "listen_vhost_user",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
