"""Your own firmware program on a simulated core in its own OS process.

The core's process is a fresh interpreter that knows only the built-in programs: it imports
the modules named in ``program_modules=`` (here ``my_firmware``, next to this script, found
through this process's ``sys.path``) before it looks the image's program up.

Run: python examples/sim_process_firmware.py
"""

import anyio
import my_firmware  # noqa: F401  (registers "shouting-echo" here too)

from platforms.sim import SimPlatform, build_sample_image
from remoteproc import RemoteprocManager


async def main() -> None:
    image = build_sample_image("shouting-echo")  # the sample resource table, naming the program
    platform = SimPlatform("m3", process=True, program_modules=("my_firmware",))
    async with RemoteprocManager() as mgr:
        rproc = mgr.add(platform, firmware=image)
        async with rproc.powered():
            channel = await rproc.wait_for_service("shout", timeout=10)
            await channel.send(b"hello from the host")
            print("reply:", (await channel.recv(timeout=5)).payload)
            print("trace:", rproc.trace(0).strip().splitlines()[-1])


if __name__ == "__main__":
    anyio.run(main)
