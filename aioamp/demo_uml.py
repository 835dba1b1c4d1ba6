"""``aioamp demo --platform uml`` (``make demo-kernel``): the real Linux kernel as the host of
an aioamp remote.

Boots the User-Mode Linux kernel that ``make kernel`` builds against an aioamp vhost-user
backend: the kernel's ``virtio_rpmsg_bus`` creates the channel aioamp announces
(``rpmsg-client-sample``), the kernel's own ``rpmsg_client_sample`` module probes it and
exchanges its messages with aioamp's echo, then the guest halts. The kernel's console lines
about rpmsg are printed as they come (``[kernel]``), beside aioamp's (``[aioamp]``).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import anyio

from platforms.uml import (
    KernelNotFoundError,
    UmlKernel,
    find_kernel,
    find_module,
    insmod_command,
    wait_for_log_command,
)
from rpmsg import BusClosedError, RpmsgBus
from rpmsg.samples import SERVICE_NAME
from transports.backends.vhost_user.server import VhostUserBackend, listen_vhost_user

from .output import say

#: The kernel's console lines worth showing: its rpmsg and virtio lines, the module's, the halt.
_SHOWN = re.compile(r"rpmsg|virtio_uml|Linux version|as init process|System halted")
_INCOMING = re.compile(r"incoming msg \d+")


async def uml_demo(count: int, quiet: bool) -> bool:
    """Run the demo; True if the kernel's client sample completed against aioamp."""
    try:
        kernel = find_kernel()
        module = find_module("rpmsg_client_sample", kernel)
    except KernelNotFoundError as exc:
        print(f"aioamp demo: {exc}", file=sys.stderr)
        return False
    start = time.perf_counter()
    guest = f"{insmod_command(module, f'count={count}')} && {wait_for_log_command('goodbye!')}"
    with tempfile.TemporaryDirectory(prefix="aioamp-demo-") as tmp:
        sock = Path(tmp) / "rpmsg.sock"
        backend = listen_vhost_user(sock)
        say(f"[aioamp] vhost-user backend listening on {sock} (the rpmsg remote)")
        say(f"[aioamp] booting {kernel} with virtio_uml.device={sock}:7")
        async with (
            backend,
            UmlKernel(guest, kernel=kernel, devices=[sock], timeout=60) as uml,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(_show_console, uml, quiet)
            echoed = await _serve(backend, count, quiet)
            run = await uml.wait()
    elapsed = time.perf_counter() - start
    faults = run.faults
    ok = run.command_status == 0 and not faults and echoed == count
    say(
        f"[aioamp] the kernel halted (exit status {run.returncode}, guest command "
        f"{run.command_status}) after {elapsed:.2f} s; {echoed}/{count} messages echoed; "
        f"{'ok' if ok else 'FAILED'}"
    )
    for line in faults[:5]:
        say(f"[aioamp] kernel fault: {line}")
    return ok


async def _serve(backend: VhostUserBackend, count: int, quiet: bool) -> int:
    """The remote: announce the sample's service and echo until the kernel goes."""
    echoed = 0
    async with RpmsgBus(backend, name="remote", ready_timeout=30) as bus:
        say("[aioamp] the kernel set the device up: both vrings enabled, vq 0 kicked")
        ep = await bus.create_service(SERVICE_NAME)
        say(f"[aioamp] announced {SERVICE_NAME!r} at 0x{ep.addr:x}")
        try:
            async for msg in ep:
                await ep.send_to(msg.src, msg.payload)
                echoed += 1
                if not quiet or echoed == count:
                    say(f"[aioamp] echoed message {echoed} to 0x{msg.src:x}: {msg.payload!r}")
        except BusClosedError:
            pass
        stats = bus.statistics()
    say(
        f"[aioamp] bus closed ({backend.close_reason}); received {stats.rx_messages}, sent "
        f"{stats.tx_messages}, drops {sum(stats.drops.values())}"
    )
    return echoed


async def _show_console(uml: UmlKernel, quiet: bool) -> None:
    async for line in uml:
        if _SHOWN.search(line) and not (quiet and _INCOMING.search(line)):
            say(f"[kernel] {line}")
