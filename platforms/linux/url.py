"""``linux:`` URLs: which kernel rpmsg bus, and how to use it. Pure: text in, a config out.

Forms (the kernel is always the host, so only ``role="host"`` opens one)::

    linux:                        the lowest numbered /dev/rpmsg_ctrlN
    linux:/dev/rpmsg_ctrl1        that control device (``linux:rpmsg_ctrl1`` too)
    linux:?rproc=m4               the control device below the remote processor named m4
                                  (/sys/class/remoteproc/*/name; or rproc=remoteproc0)

Options: ``mtu=BYTES`` (default 496: the kernel does not report its buffer size),
``uevents=auto|kernel|udev`` (:mod:`platforms.linux.uevent`), ``bind=0`` (never write a
channel's ``driver_override``; only channels bound to rpmsg_chrdev already can be opened),
``timeout=SECONDS`` (wait that long for the control device to appear). An unknown option, one
given twice or an invalid value is a :class:`~transports.errors.TransportURLError`.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

import attrs

from transports.errors import TransportURLError
from transports.url import flag_option, int_option, parse_query, refuse_unknown, seconds_option

from .uevent_source import UEVENT_SOURCES, UeventSource

SCHEME = "linux"
_CTRL = re.compile(r"(?:/dev/)?(rpmsg_ctrl\d+)")
_OPTIONS = ("mtu", "uevents", "bind", "rproc", "timeout")
#: rpmsg_hdr.len is 16 bits: no message is longer.
MAX_MTU = 0xFFFF


@attrs.frozen
class LinuxConfig:
    """What a ``linux:`` URL says, validated."""

    ctrl: str | None
    rproc: str | None
    mtu: int
    uevents: UeventSource
    bind: bool
    timeout: float | None


def _source(value: str) -> UeventSource:
    for source in UEVENT_SOURCES:
        if value == source:
            return source
    raise TransportURLError(f"option uevents={value!r} is not one of {', '.join(UEVENT_SOURCES)}")


def linux_config(url: str | SplitResult) -> LinuxConfig:
    parts = urlsplit(url) if isinstance(url, str) else url
    if parts.scheme != SCHEME:
        raise TransportURLError(f"{parts.geturl()!r} is not a linux: URL")
    query = parse_query(parts.query)
    refuse_unknown("linux:", parts, query, _OPTIONS)
    where = parts.netloc + parts.path
    ctrl = None
    if where:
        found = _CTRL.fullmatch(where)
        if found is None:
            raise TransportURLError(
                f"linux:{where}: name a control device (/dev/rpmsg_ctrlN) or nothing"
            )
        ctrl = found.group(1)
    mtu = int_option(query, "mtu", 496)
    if not 1 <= mtu <= MAX_MTU:
        raise TransportURLError(f"option mtu={mtu} is not 1..{MAX_MTU}")
    uevents = query.get("uevents", "auto")
    rproc = query.get("rproc")
    if rproc is not None and not re.fullmatch(r"[^/\s]+", rproc):
        raise TransportURLError(f"option rproc={rproc!r} is not a remote processor's name")
    bind = flag_option(query, "bind")
    timeout = seconds_option(query, "timeout", -1.0) if "timeout" in query else None
    return LinuxConfig(
        ctrl=ctrl,
        rproc=rproc,
        mtu=mtu,
        uevents=_source(uevents),
        bind=True if bind is None else bind,
        timeout=timeout,
    )
