"""Boot a simulated remote processor in its own OS process, talk to its rpmsg client sample,
read its trace buffer, watch its state transitions, and shut it down.

Run: python examples/boot_sim.py
"""

import anyio

from platforms.sim import SimPlatform, build_sample_image
from remoteproc import RemoteprocManager


async def main() -> None:
    async with RemoteprocManager() as mgr:
        rproc = mgr.add(SimPlatform("m3", process=True), firmware=build_sample_image())
        async with rproc.transitions() as transitions, rproc.powered():
            channel = await rproc.wait_for_service("rpmsg-client-sample", timeout=10)
            await channel.send(b"hello world!")
            reply = await channel.recv(timeout=5)
            print("reply:", reply.payload)
            print("state:", rproc.state_name)
            print("trace:", rproc.trace(0).strip())
            booted = await anext(transitions)  # the first state change: offline -> running
            print("transition:", booted)


if __name__ == "__main__":
    anyio.run(main)
