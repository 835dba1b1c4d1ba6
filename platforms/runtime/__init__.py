"""The firmware-program runtime every simulated core shares: the program registry, what a
program sees (:class:`FirmwareContext`), fault injection and how a run ends.

It is neutral ground: :mod:`platforms.sim` and the PandaBoard model
(:mod:`platforms.pandaboard.model`) both run programs through it, and neither imports the
other.
"""

from .context import (
    Crash,
    Faults,
    FirmwareContext,
    FirmwareCrash,
    FirmwareTransport,
    run_firmware,
)
from .programs import (
    MAX_PROGRAM_NAME,
    Program,
    ProgramNameError,
    check_program_name,
    get_program,
    program_names,
    register_program,
    unregister_program,
)

__all__ = [
    "MAX_PROGRAM_NAME",
    "Crash",
    "Faults",
    "FirmwareContext",
    "FirmwareCrash",
    "FirmwareTransport",
    "Program",
    "ProgramNameError",
    "check_program_name",
    "get_program",
    "program_names",
    "register_program",
    "run_firmware",
    "unregister_program",
]
