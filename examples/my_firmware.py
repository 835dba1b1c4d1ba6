"""A firmware program of your own, in a module: ``sim_process_firmware.py`` boots it on a core
that runs in its own OS process, which imports this module by name (``program_modules=``).

Not run directly: it only registers the program when imported.
"""

from platforms.sim import FirmwareContext, register_program


async def shouting_echo(ctx: FirmwareContext) -> None:
    """Announce ``shout`` and answer every message in capitals."""
    async with ctx.rpmsg() as bus:  # waits for the host's DRIVER_OK
        ep = await bus.create_service("shout")
        ctx.log("shout: ready")  # into trace buffer 0
        async for msg in ep:
            await ep.send_to(msg.src, bytes(msg.payload).upper())


register_program("shouting-echo", shouting_echo)
