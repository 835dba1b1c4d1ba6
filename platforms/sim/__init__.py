"""The simulated remote processor platform and its firmware programs."""

from .context import Faults, FirmwareContext, FirmwareCrash, FirmwareTransport
from .platform import SimPlatform
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
    "Faults",
    "FirmwareContext",
    "FirmwareCrash",
    "FirmwareTransport",
    "Program",
    "ProgramNameError",
    "SimPlatform",
    "check_program_name",
    "get_program",
    "program_names",
    "register_program",
    "unregister_program",
]
