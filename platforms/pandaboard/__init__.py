"""The PandaBoard (OMAP4) platform: IPU and DSP driven from userspace (see docs/pandaboard.md)."""

from .config import PANDABOARD, BoardConfig, ProcessorConfig
from .driver import PandaBoard, PandaBoardPlatform, PandaStatistics
from .images import build_dsp_image, build_ipu_image
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
    "build_dsp_image",
    "build_ipu_image",
    "plan_entries",
]
