"""``vhost-user:PATH`` URLs: :func:`open_transport` opens a backend or a frontend by role.

The role given to :func:`~transports.registry.open_transport` picks the side: ``remote`` is the
backend (the virtio device: aioamp listens on ``PATH`` and returns once a frontend has connected
and set the device up, as an ``shm://`` server waits for its peer), ``host`` the frontend (the
virtio driver: aioamp connects to a backend listening on ``PATH``). To boot a frontend after
listening (a kernel), use :func:`~.server.listen_vhost_user`, which returns at once. Options:

* ``reconnect=1`` (backend): after a frontend disconnects, wait for the next one; the bus
  announces its services to each (default: the transport closes with the first frontend);
* ``timeout=SECONDS`` (frontend): how long to retry connecting and wait for the setup's
  replies (default 10);
* ``num``, ``align``, ``buffer_size``, ``buffers`` (frontend): the layout of the memory the
  frontend creates. The backend takes the layout the frontend sends; of these it accepts only
  ``buffer_size``, which must match the frontend's (512 for Linux).

Any other option, an option given twice, an invalid value or an option of the other role is
refused (:class:`~transports.errors.TransportURLError`).
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
from ...virtio.layout import SharedLayout

_BACKEND_ONLY = ("reconnect",)
_FRONTEND_ONLY = ("timeout", "num", "align", "buffers")


@attrs.frozen
class VhostUserConfig:
    """Everything a ``vhost-user:`` URL says, validated."""

    path: str
    layout: SharedLayout
    reconnect: bool
    timeout: float
    given: frozenset[str]  # the options the URL names


def vhost_user_config(parts: SplitResult, query: dict[str, str]) -> VhostUserConfig:
    refuse_unknown("vhost-user:", parts, query, (*_BACKEND_ONLY, "timeout", *LAYOUT_OPTIONS))
    path = parts.netloc + parts.path
    if not path:
        raise TransportURLError("vhost-user: needs a socket path, e.g. vhost-user:/tmp/rpmsg.sock")
    return VhostUserConfig(
        path=socket_option({"path": path}, "path", path),
        layout=layout_from_query(query),
        reconnect=bool(flag_option(query, "reconnect")),
        timeout=seconds_option(query, "timeout", 10.0),
        given=frozenset(query),
    )


async def open_vhost_user_url(parts: SplitResult, query: dict[str, str], role: Role) -> Transport:
    config = vhost_user_config(parts, query)
    other = _FRONTEND_ONLY if role == "remote" else _BACKEND_ONLY
    wrong = sorted(config.given & set(other))
    if wrong:
        side = "backend (role remote)" if role == "remote" else "frontend (role host)"
        many = len(wrong) > 1
        raise TransportURLError(
            f"vhost-user: option{'s' if many else ''} {', '.join(wrong)} "
            f"{'do' if many else 'does'} not apply to the {side}"
        )
    if role == "remote":
        from .server import listen_vhost_user

        backend = listen_vhost_user(config.path, reconnect=config.reconnect)
        backend.buffer_size = config.layout.buffer_size
        try:
            await backend.wait_for_frontend()
        except BaseException:
            await backend.aclose()
            raise
        return backend
    if role != "host":
        raise TransportURLError(f"role must be 'host' or 'remote', not {role!r}")
    from .client import connect_vhost_user

    return await connect_vhost_user(config.path, layout=config.layout, timeout=config.timeout)
