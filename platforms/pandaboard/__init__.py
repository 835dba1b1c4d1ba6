"""The PandaBoard (OMAP4) platform: IPU and DSP driven from userspace (see docs/pandaboard.md)."""

from .config import PANDABOARD, BoardConfig, ProcessorConfig
from .driver import PandaBoard, PandaBoardPlatform, PandaStatistics
from .mmu import MmuError, TlbEntry, plan_entries

__all__ = [
    "PANDABOARD",
    "BoardConfig",
    "MmuError",
    "PandaBoard",
    "PandaBoardPlatform",
    "PandaStatistics",
    "ProcessorConfig",
    "TlbEntry",
    "plan_entries",
]
