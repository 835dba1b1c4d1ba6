"""rpmsg between two OS processes over POSIX shared memory (``shm://``): this script is the
host, and starts ``aioamp echo`` as the remote, which announces a service and echoes.

Run: python examples/shm_two_processes.py
"""

import os
import sys

import anyio

from rpmsg import open_bus

URL = f"shm://example-{os.getpid()}"  # a name of our own: /dev/shm/example-PID
SERVICE = "echo"
COUNT = 5


async def main() -> None:
    echo = [sys.executable, "-m", "aioamp", "echo", "--transport", URL, "--role", "remote"]
    echo += ["--service", SERVICE, "--count", str(COUNT)]
    async with await anyio.open_process(echo, stdout=None, stderr=None) as remote:
        async with open_bus(URL, role="host") as bus:  # waits for the peer to connect
            channel = await bus.wait_for_service(SERVICE, timeout=30)
            for i in range(COUNT):
                await channel.send(b"message %d" % i)
                reply = await channel.recv(timeout=10)
                print(f"{reply.payload!r} came back from pid {remote.pid}")
        print("aioamp echo exited with", await remote.wait())  # 0: --count messages echoed


if __name__ == "__main__":
    anyio.run(main)
