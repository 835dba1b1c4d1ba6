"""The ring engine of the vring bus: one class per role, one path each. Pure.

:class:`~rpmsg.rings.host.HostRings` (the virtio driver: owns the buffers) and
:class:`~rpmsg.rings.remote.RemoteRings` (the virtio device) share
:class:`~rpmsg.rings.base.Rings`. Each receives and sends with one call into its vring half per
message; the C twin of the vrings does the same work as the pure reference classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import RX_VQ, SUPPORTED_FEATURES, TX_VQ, KickFn, Poll, RawMessage, Rings
from .host import HostRings
from .remote import RemoteRings

if TYPE_CHECKING:
    from transports.base import Role  # a type only: transports.base is a shell module

__all__ = [
    "RX_VQ",
    "SUPPORTED_FEATURES",
    "TX_VQ",
    "HostRings",
    "KickFn",
    "Poll",
    "RawMessage",
    "RemoteRings",
    "Rings",
    "rings_for",
]


def rings_for(role: Role) -> type[Rings]:
    """The rings class of ``role`` ("host" or "remote")."""
    return HostRings if role == "host" else RemoteRings
