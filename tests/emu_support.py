"""Shared helpers of the emulated-core tests (tests/unit, tests/shell, tests/e2e).

unicorn comes with the ``emu`` extra (``make test`` installs it). Without it these tests skip,
except where ``AIOAMP_REQUIRE_EMU`` is set (CI), where a missing piece is a failure.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
REQUIRED = bool(os.environ.get("AIOAMP_REQUIRE_EMU"))


def need_unicorn() -> None:
    """Skip the calling module without unicorn (fail instead where it is required)."""
    try:
        import unicorn  # noqa: F401
    except ImportError as exc:
        if REQUIRED:
            raise
        pytest.skip(f"unicorn (the emu extra) is not installed: {exc}", allow_module_level=True)


@functools.cache
def symbols(image: str) -> dict[str, tuple[int, int]]:
    """``name -> (address, size)`` of the functions and objects of ``firmware/<image>``."""
    with open(FIRMWARE / image, "rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        assert table is not None
        return {
            s.name: (int(s["st_value"]) & ~1, int(s["st_size"]))
            for s in table.iter_symbols()
            if s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT")
        }


def constant(image: str, name: str) -> int:
    """The value of the ``uint32_t`` object ``name`` as ``firmware/<image>`` initialises it."""
    address, size = symbols(image)[name]
    with open(FIRMWARE / image, "rb") as f:
        for segment in ELFFile(f).iter_segments():
            start = int(segment["p_vaddr"])
            if segment["p_type"] == "PT_LOAD" and start <= address < start + segment["p_filesz"]:
                data = segment.data()[address - start : address - start + size]
                return int.from_bytes(data, "little")
    raise LookupError(f"{name} is not initialised data of {image}")


def function_at(image: str, pc: int) -> str | None:
    """The function of ``image`` whose code holds ``pc``."""
    for name, (start, size) in symbols(image).items():
        if start <= pc < start + size:
            return name
    return None


def emulator_threads() -> list[threading.Thread]:
    """Threads of emulated cores still alive (named ``emu-<core>``)."""
    return [t for t in threading.enumerate() if t.name.startswith("emu-") and t.is_alive()]
