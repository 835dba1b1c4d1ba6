"""Two rpmsg buses in one process, over an in-process vdev: a service, a channel, an echo.

Run: python examples/loopback_echo.py
"""

import anyio

from rpmsg import RpmsgBus
from transports import loopback_pair


async def main() -> None:
    host_end, remote_end = loopback_pair()  # one in-process vdev: two vrings and a buffer pool
    async with RpmsgBus(host_end) as host, RpmsgBus(remote_end) as remote:
        service = await remote.create_service("echo")  # an endpoint and its announcement
        channel = await host.wait_for_service("echo", timeout=5)
        for text in (b"ping", b"pong"):
            await channel.send(text)
            msg = await service.recv(timeout=5)
            await service.send_to(msg.src, msg.payload)  # reply to whoever sent it
            reply = await channel.recv(timeout=5)
            print(f"echoed {reply.payload!r} from {reply.src:#x}")
        stats = host.statistics()
        print(f"host sent {stats.tx_messages}, received {stats.rx_messages} (the announcement too)")


if __name__ == "__main__":
    anyio.run(main)
