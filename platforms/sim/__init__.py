"""The simulated remote processor platform, and (re-exported from :mod:`platforms.runtime`)
the firmware-program registry and fault injection its users need."""

from platforms.runtime import (
    MAX_PROGRAM_NAME,
    Faults,
    FirmwareContext,
    FirmwareCrash,
    FirmwareTransport,
    Program,
    ProgramNameError,
    check_program_name,
    get_program,
    program_names,
    register_program,
    unregister_program,
)

from .images import build_sample_image, sample_resource_entries
from .platform import SimPlatform

__all__ = [
    "MAX_PROGRAM_NAME",
    "Faults",
    "FirmwareContext",
    "FirmwareCrash",
    "FirmwareTransport",
    "Program",
    "ProgramNameError",
    "SimPlatform",
    "build_sample_image",
    "check_program_name",
    "get_program",
    "program_names",
    "register_program",
    "sample_resource_entries",
    "unregister_program",
]
