"""Zero-copy against a real peer: the Linux kernel (UML) as the host, its rpmsg char device as
the application. The guest (kernel_guest/ctrl_echo.py) writes every size 1..496 and then
numbered messages to aioamp's echo service through /dev/rpmsgN and checks each echo: here
the aioamp remote answers from borrowed tx buffers (the host's rx buffers, filled in place),
or receives into held rx buffers (views into the kernel's tx buffers) and answers from them.
Marked ``kernel``; each runs with both vring implementations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rpmsg import BusClosedError, Endpoint, HeldMessage, ZeroCopyEndpoint

from .kernel_support import guest_program, kernel_remote

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("vring_impl")]

MTU = 496
COUNT = 2000


async def zero_copy_echo(ep: Endpoint, *, borrow: bool) -> int:
    """Echo every message: held payloads (a zero-copy endpoint) released after the answer;
    answers written into borrowed buffers (``borrow``) or sent as copies."""
    echoed = 0
    try:
        async for msg in ep:
            payload = msg.payload
            if borrow:
                with await ep.borrow_tx() as buf:
                    n = memoryview(payload).nbytes
                    buf.data[:n] = payload
                    buf.send(n, dst=msg.src)
            else:
                await ep.send_to(msg.src, payload)
            if isinstance(msg, HeldMessage):
                msg.release()
            echoed += 1
    except BusClosedError:
        pass
    return echoed


@pytest.mark.parametrize(
    ("hold", "borrow"),
    [(False, True), (True, False), (True, True)],
    ids=["borrowed-tx", "held-rx", "both"],
)
async def test_the_kernel_reads_borrowed_sends_and_aioamp_holds_its_messages(
    kernel: Path, tmp_path: Path, hold: bool, borrow: bool
) -> None:
    guest = guest_program("ctrl_echo.py", "aioamp-echo", COUNT, 32)
    async with kernel_remote(kernel, tmp_path, guest) as (_backend, uml, bus):
        ep = await bus.create_service("aioamp-echo", zero_copy=hold)
        assert isinstance(ep, ZeroCopyEndpoint) is hold
        echoed = await zero_copy_echo(ep, borrow=borrow)
        stats = bus.statistics()
        run = await uml.wait()
    run.check()
    console = "\n".join(run.lines)
    assert f"guest: every size 1..{MTU} echoed byte for byte" in console
    assert f"guest: {COUNT} messages echoed in order" in console
    assert echoed == MTU + COUNT
    assert sum(stats.drops.values()) == 0
    assert stats.borrowed_total == (echoed if borrow else 0)
    assert stats.held_total == (echoed if hold else 0)
    assert (stats.borrowed, stats.held, stats.quarantined, stats.leaks) == (0, 0, 0, 0)
