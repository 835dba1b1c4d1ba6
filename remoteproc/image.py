"""A firmware image as aioamp keeps it: frozen types, no ELF library inside (pure).

:mod:`remoteproc.firmware` reads an ELF file into a :class:`FirmwareImage` (pyelftools stays
there); :mod:`remoteproc.elfwriter` writes one. The names both sides agree on (the sections a
loader looks up, the segment permission bits) are defined here once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import attrs

__all__ = [
    "ELFMAG",
    "PF_R",
    "PF_W",
    "PF_X",
    "PROGRAM_SECTION",
    "RESOURCE_TABLE_SECTION",
    "FirmwareImage",
    "LoadOp",
    "ResourceTableLocation",
    "Segment",
]

#: The section holding the resource table (found by name, like Linux).
RESOURCE_TABLE_SECTION = ".resource_table"
#: The non-alloc section naming the firmware program a simulated core runs.
PROGRAM_SECTION = ".aioamp.program"
#: e_ident's magic (gABI "ELF Identification").
ELFMAG = b"\x7fELF"
#: p_flags bits of a program header.
PF_X, PF_W, PF_R = 0x1, 0x2, 0x4


@attrs.frozen
class Segment:
    """One PT_LOAD program header and its file bytes.

    Attributes:
        index: the program header index (as in ``readelf -l``), used in error messages.
        paddr: load (device) address.
        vaddr: virtual address, informational.
        filesz: bytes taken from the file (``len(data)``).
        memsz: bytes occupied in memory; the tail beyond ``filesz`` is zero filled.
        flags: ``p_flags`` (PF_R=4, PF_W=2, PF_X=1).
        data: the file bytes.
    """

    index: int
    paddr: int
    vaddr: int
    filesz: int
    memsz: int
    flags: int
    data: bytes = attrs.field(repr=False)

    @property
    def end(self) -> int:
        """First device address past the segment in memory."""
        return self.paddr + self.memsz

    def header_dict(self) -> dict[str, int]:
        """The program-header fields, as ``readelf -l`` shows them (JSON-ready)."""
        return {
            "index": self.index,
            "paddr": self.paddr,
            "vaddr": self.vaddr,
            "filesz": self.filesz,
            "memsz": self.memsz,
            "flags": self.flags,
        }

    @property
    def perms(self) -> str:
        """``p_flags`` as ``readelf`` prints them, e.g. ``"R E"``."""
        return "".join(
            c if self.flags & bit else " " for c, bit in (("R", PF_R), ("W", PF_W), ("E", PF_X))
        )

    def contains(self, addr: int, size: int = 1) -> bool:
        """Whether ``[addr, addr + size)`` lies inside the segment's memory image."""
        return self.paddr <= addr and addr + size <= self.end


@attrs.frozen
class ResourceTableLocation:
    """Where the ``.resource_table`` section lands, and its initial contents.

    Attributes:
        addr: ``sh_addr``, a device address inside a loaded segment.
        size: ``sh_size``.
        data: the section bytes from the file (the "cached table" of Linux).
    """

    addr: int
    size: int
    data: bytes = attrs.field(repr=False)


class LoadOp(NamedTuple):
    """One write the memory layer performs: ``data`` at ``paddr``, then ``zero_fill`` zeros."""

    paddr: int
    data: bytes
    zero_fill: int


@attrs.frozen
class FirmwareImage:
    """A validated, loadable firmware image (no pyelftools types inside)."""

    name: str
    entry: int
    elf_class: int
    machine: str | int
    segments: tuple[Segment, ...]
    resource_table: ResourceTableLocation | None = None
    program: str | None = None
    sections: tuple[str, ...] = ()

    def segment_containing(self, addr: int, size: int = 1) -> Segment | None:
        """The PT_LOAD segment whose memory holds ``[addr, addr + size)``, or None."""
        for seg in self.segments:
            if seg.contains(addr, size):
                return seg
        return None

    def iter_load(self) -> Iterator[LoadOp]:
        """Yield the writes that load the image, one per PT_LOAD with a nonzero ``p_memsz``.

        Segments are loaded at ``p_paddr`` (Linux ``rproc_elf_load_segments`` treats it as the
        device address); empty segments are skipped, as Linux does.
        """
        for seg in self.segments:
            if seg.memsz:
                yield LoadOp(seg.paddr, seg.data, seg.memsz - seg.filesz)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary for ``inspect``-style commands."""
        rsc = self.resource_table
        return {
            "name": self.name,
            "entry": self.entry,
            "class": f"ELF{self.elf_class}",
            "machine": self.machine,
            "segments": [
                {
                    **s.header_dict(),
                    "perms": s.perms,
                }
                for s in self.segments
            ],
            "resource_table": None if rsc is None else {"addr": rsc.addr, "size": rsc.size},
            "program": self.program,
            "sections": list(self.sections),
        }
