"""A fake UIO device and a fake sysfs tree, so the UIO driver code runs unchanged.

Theory of operation: :class:`FakeUio` behaves like ``uio_pdrv_genirq`` on a level-triggered
line. The driver's descriptor is one end of a socketpair: when the modelled line asserts while
the interrupt is enabled, the event count goes up, the kernel side masks the interrupt and the
4-byte count becomes readable. The driver's 4-byte writes (1 = unmask, 0 = mask) arrive on our
end and are handled by :meth:`FakeUio.serve`; unmasking a line that is still asserted fires
again at once, as ``enable_irq`` does. :meth:`FakeUio.skip` makes the next count jump, as
interrupts the reader was too slow for would. The line may change from another thread (an
emulated core's register access): ``lock`` (the model bus's) guards the state.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anyio

_U32 = struct.Struct("=I")


class FakeUio:
    """One modelled UIO device (``/dev/uioN``)."""

    def __init__(self, name: str, lock: AbstractContextManager[Any] | None = None) -> None:
        self.name = name
        self._lock = lock if lock is not None else threading.RLock()
        self._dev, self._host = socket.socketpair()
        self._dev.setblocking(False)
        self.count = 0
        self.enabled = True  # the kernel enables the irq at probe
        self.level = False
        self._skip = 0
        self.unmasks = 0
        self.fired = 0
        self.opened: list[int] = []

    def opener(self, path: str) -> int:
        """The ``opener`` to give :class:`~platforms.pandaboard.hw.UioDevice`."""
        fd = os.dup(self._host.fileno())
        self.opened.append(fd)
        return fd

    def set_line(self, level: bool) -> None:
        """The modelled interrupt line changed (a :class:`MailboxModel` listener)."""
        with self._lock:
            rising = level and not self.level
            self.level = level
            if rising:
                self._fire()

    def skip(self, n: int) -> None:
        """Count ``n`` interrupts the driver will never see (a count jump)."""
        self._skip += n

    def _fire(self) -> None:
        if not (self.level and self.enabled):
            return
        self.enabled = False  # uio_pdrv_genirq: disable_irq_nosync in the handler
        self.count = (self.count + 1 + self._skip) & 0xFFFF_FFFF
        self._skip = 0
        self.fired += 1
        with contextlib.suppress(OSError):  # closed: the model is going away
            self._dev.send(_U32.pack(self.count))

    def _control(self, value: int) -> None:
        with self._lock:
            if value:
                self.unmasks += 1
                if not self.enabled:
                    self.enabled = True
                    self._fire()  # still asserted: fires again
            else:
                self.enabled = False

    async def serve(self) -> None:
        """Handle the driver's irqcontrol writes until cancelled."""
        buf = b""
        while True:
            try:
                data = self._dev.recv(64)
            except BlockingIOError:
                await anyio.wait_readable(self._dev)
                continue
            if not data:
                return
            buf += data
            while len(buf) >= 4:
                self._control(_U32.unpack(buf[:4])[0])
                buf = buf[4:]

    def close(self) -> None:
        self._dev.close()
        self._host.close()


def build_sysfs(
    root: str | os.PathLike[str], devices: list[tuple[str, list[tuple[str, int, int]]]]
) -> Path:
    """Create ``root/class/uio/uioN/{name, maps/mapM/{name,addr,size,offset}}``.

    Args:
        devices: ``(name, [(map name, addr, size), ...])`` per device, numbered in order.

    Returns:
        The ``class/uio`` directory (pass it as ``sysfs``).
    """
    base = Path(root) / "class" / "uio"
    for n, (name, maps) in enumerate(devices):
        dev = base / f"uio{n}"
        dev.mkdir(parents=True)
        (dev / "name").write_text(name + "\n")
        for m, (map_name, addr, size) in enumerate(maps):
            d = dev / "maps" / f"map{m}"
            d.mkdir(parents=True)
            (d / "name").write_text(map_name + "\n")
            (d / "addr").write_text(f"{addr:#010x}\n")
            (d / "size").write_text(f"{size:#010x}\n")
            (d / "offset").write_text(f"{addr & 0xFFF:#x}\n")
    return base
