"""One rpmsg application for the laptop and the board (docs/linux.md).

The same code runs over ``shm://`` on a development machine, against an aioamp peer playing
the remote core, and over ``linux:`` on a board, where the kernel runs the rpmsg bus and the
remote core runs the firmware::

    python examples/rpmsg_app.py --serve shm://demo &    # the remote core's side, simulated
    python examples/rpmsg_app.py shm://demo              # the application
    python examples/rpmsg_app.py linux:                  # the application, on the board
"""

from __future__ import annotations

import argparse
import contextlib

import anyio

from rpmsg import Bus, BusClosedError, open_bus

SERVICE = "aioamp-demo"


async def application(url: str, count: int = 10) -> list[str]:
    """Ask the remote core ``count`` questions; its answers, in order."""
    async with open_bus(url, role="host") as bus:
        channel = await bus.wait_for_service(SERVICE, timeout=30)
        answers = []
        for i in range(count):
            await channel.send(f"reading {i}".encode())
            reply = await channel.recv(timeout=10)
            answers.append(reply.payload.decode())
        return answers


async def remote_core(bus: Bus) -> None:
    """The remote core's side (the firmware's job on a board): answer every question, until
    the application's side goes away."""
    service = await bus.create_service(SERVICE)
    with contextlib.suppress(BusClosedError):
        async for msg in service:
            await service.send_to(msg.src, msg.payload + b": ok")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="shm://NAME, linux:, ...")
    parser.add_argument("--serve", action="store_true", help="be the remote core (shm:// only)")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    if args.serve:
        async with open_bus(args.url, role="remote") as bus:
            await remote_core(bus)
    else:
        for answer in await application(args.url, args.count):
            print(answer)


if __name__ == "__main__":
    anyio.run(main)
