"""The simulated remote processor platform and its firmware programs."""

from .context import Faults, FirmwareContext, FirmwareCrash, FirmwareTransport
from .platform import SimPlatform
from .programs import (
    Program,
    get_program,
    program_names,
    register_program,
    unregister_program,
)

__all__ = [
    "Faults",
    "FirmwareContext",
    "FirmwareCrash",
    "FirmwareTransport",
    "Program",
    "SimPlatform",
    "get_program",
    "program_names",
    "register_program",
    "unregister_program",
]
