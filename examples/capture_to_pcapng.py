"""Record the traffic of a bus pair into a pcapng file that Wireshark and tshark read.

Run: python examples/capture_to_pcapng.py [FILE]   (default: rpmsg.pcapng)
Then: ``aioamp capture --install-dissector`` once, and ``wireshark FILE``.
"""

import sys

import anyio

from rpmsg import MemoryCapture, RpmsgBus, capturing
from rpmsg.capture import PcapngCapture
from transports import loopback_pair


async def exchange() -> None:
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end, name="host") as host, RpmsgBus(remote_end, name="remote") as r:
        service = await r.create_service("rpmsg-chrdev")
        channel = await host.wait_for_service("rpmsg-chrdev", timeout=5)
        await channel.send(b"request")
        msg = await service.recv(timeout=5)
        await service.send_to(msg.src, b"response")
        await channel.recv(timeout=5)


async def main(path: str) -> None:
    memory = MemoryCapture()  # the same records, kept in a list
    with PcapngCapture(path) as pcap, capturing(pcap), capturing(memory):
        await exchange()  # every bus made inside the block is recorded, both of them here
    for r in memory.records:
        head = bytes(r.payload)[:16]
        print(f"{r.link.bus:>6} {r.direction.name} {r.src:#x} -> {r.dst:#x}: {head!r}")
    print(f"wrote {path}: {pcap.statistics()}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "rpmsg.pcapng")
