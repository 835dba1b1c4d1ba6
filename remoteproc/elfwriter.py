"""A small writer of little-endian ELF executables, for tests, demos and the simulator.

Theory of operation: the builder collects PT_LOAD segments and sections, then ``build()`` lays the
file out in one pass::

    Ehdr | Phdr[n] | segment data (each at offset == vaddr mod p_align) | loose section data
         | .shstrtab | Shdr[0 = SHN_UNDEF, user sections..., .shstrtab]

A section added "in a segment" does not get bytes of its own: it describes part of a segment's
file image (as a linker would), so ``sh_offset`` points into that segment and ``sh_addr`` is the
address where it lands. That is how ``.resource_table`` is found by a loader: by name, at
``sh_addr``, inside loaded memory. Non-alloc sections such as ``.aioamp.program`` (the name of the
simulated firmware program to run) live outside every segment.

Only the stdlib is used; the layouts are the System V gABI structures, one ``struct.Struct`` each.
The writer is a developer tool: a caller's mistake (overlapping segments, a section that lands
nowhere) raises a plain ``ValueError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .image import ELFMAG, PF_R, PF_W, PF_X, PROGRAM_SECTION, RESOURCE_TABLE_SECTION

__all__ = [
    "EF_ARM_EABI_VER5",
    "ELFCLASS32",
    "ELFCLASS64",
    "EM_AARCH64",
    "EM_ARM",
    "EM_X86_64",
    "ET_DYN",
    "ET_EXEC",
    "PF_R",
    "PF_W",
    "PF_X",
    "PROGRAM_SECTION",
    "RESOURCE_TABLE_SECTION",
    "SHF_ALLOC",
    "SHF_EXECINSTR",
    "SHF_WRITE",
    "SHT_NOBITS",
    "SHT_NULL",
    "SHT_PROGBITS",
    "SHT_STRTAB",
    "ElfBuilder",
    "build_firmware",
]

# e_ident (gABI "ELF Identification").
ELFCLASS32 = 1
ELFCLASS64 = 2
_ELFDATA2LSB = 1
_EV_CURRENT = 1
_ELFOSABI_NONE = 0

ET_EXEC = 2
ET_DYN = 3

EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EF_ARM_EABI_VER5 = 0x05000000

PT_LOAD = 1

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

# Elf32_Ehdr: e_ident[16], e_type, e_machine (Elf32_Half), e_version (Elf32_Word), e_entry
# (Elf32_Addr), e_phoff, e_shoff (Elf32_Off), e_flags (Elf32_Word), e_ehsize, e_phentsize,
# e_phnum, e_shentsize, e_shnum, e_shstrndx (Elf32_Half). 52 bytes.
_EHDR32 = struct.Struct("<16sHHIIIIIHHHHHH")
# Elf64_Ehdr: same fields, e_entry/e_phoff/e_shoff widened to 64 bits. 64 bytes.
_EHDR64 = struct.Struct("<16sHHIQQQIHHHHHH")
# Elf32_Phdr: p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align. 32 bytes.
_PHDR32 = struct.Struct("<IIIIIIII")
# Elf64_Phdr: p_type, p_flags (moved up for alignment), p_offset, p_vaddr, p_paddr, p_filesz,
# p_memsz, p_align. 56 bytes.
_PHDR64 = struct.Struct("<IIQQQQQQ")
# Elf32_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info,
# sh_addralign, sh_entsize. 40 bytes.
_SHDR32 = struct.Struct("<IIIIIIIIII")
# Elf64_Shdr: sh_name, sh_type (Elf64_Word), sh_flags, sh_addr, sh_offset, sh_size (64-bit),
# sh_link, sh_info (Elf64_Word), sh_addralign, sh_entsize (64-bit). 64 bytes.
_SHDR64 = struct.Struct("<IIQQQQIIQQ")


@dataclass
class _Segment:
    paddr: int
    vaddr: int
    data: bytearray
    memsz: int
    flags: int
    align: int
    offset: int = 0  # assigned by build()


@dataclass
class _Section:
    name: str
    sh_type: int
    flags: int
    addr: int
    data: bytes
    align: int
    segment: int | None  # index into ElfBuilder._segments, or None for a loose section
    offset: int = 0  # file offset, assigned by build() for loose sections


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align if align > 1 else value


def _pf_from_shf(flags: int) -> int:
    return PF_R | (PF_W if flags & SHF_WRITE else 0) | (PF_X if flags & SHF_EXECINSTR else 0)


def _shf_from_pf(flags: int) -> int:
    return SHF_ALLOC | (SHF_WRITE if flags & PF_W else 0) | (SHF_EXECINSTR if flags & PF_X else 0)


class ElfBuilder:
    """Accumulates segments and sections, then writes a little-endian ELF executable.

    Args:
        machine: ``e_machine`` (``EM_ARM``, ``EM_AARCH64``, ...).
        elf_class: 32 or 64.
        entry: ``e_entry``, the address the remote core starts at.
        e_flags: processor flags; defaults to EABI version 5 for ARM, 0 otherwise.
        e_type: ``ET_EXEC`` (default) or ``ET_DYN``.
    """

    def __init__(
        self,
        *,
        machine: int = EM_ARM,
        elf_class: int = 32,
        entry: int = 0,
        e_flags: int | None = None,
        e_type: int = ET_EXEC,
    ) -> None:
        if elf_class not in (32, 64):
            raise ValueError(f"elf_class must be 32 or 64, not {elf_class}")
        self.machine = machine
        self.elf_class = elf_class
        self.e_type = e_type
        self.e_flags = (
            (EF_ARM_EABI_VER5 if machine == EM_ARM else 0) if e_flags is None else e_flags
        )
        self._limit = 1 << elf_class
        self.entry = self._check_addr("entry", entry)
        self._segments: list[_Segment] = []
        self._sections: list[_Section] = []

    def _check_addr(self, what: str, addr: int, size: int = 0) -> int:
        if addr < 0 or size < 0 or addr + size > self._limit:
            raise ValueError(f"{what} {addr:#x} (+{size:#x}) does not fit ELF{self.elf_class}")
        return addr

    def add_segment(
        self,
        paddr: int,
        data: bytes,
        *,
        memsz: int | None = None,
        vaddr: int | None = None,
        flags: int = PF_R | PF_X,
        section_name: str | None = None,
        align: int = 4,
    ) -> int:
        """Add a PT_LOAD segment loaded at ``paddr``; returns its program header index.

        Program headers are written in the order added: add them in ascending address order for
        a gABI-conforming file (loaders, ours and Linux's, do not care).

        ``memsz`` beyond ``len(data)`` is zero-filled by the loader (a .bss tail). With
        ``section_name``, a section covering the segment's file bytes is added too.
        """
        memsz = len(data) if memsz is None else memsz
        vaddr = paddr if vaddr is None else vaddr
        if memsz < len(data):
            raise ValueError(f"memsz {memsz:#x} is smaller than the data ({len(data):#x} bytes)")
        if align < 1 or align & (align - 1):
            raise ValueError(f"align must be a power of two, not {align}")
        self._check_addr("segment paddr", paddr, memsz)
        self._check_addr("segment vaddr", vaddr, memsz)
        for i, seg in enumerate(self._segments):
            if memsz and seg.memsz and paddr < seg.paddr + seg.memsz and seg.paddr < paddr + memsz:
                raise ValueError(f"segment at {paddr:#x}+{memsz:#x} overlaps segment {i}")
        self._segments.append(_Segment(paddr, vaddr, bytearray(data), memsz, flags, align))
        index = len(self._segments) - 1
        if section_name is not None:
            self._sections.append(
                _Section(
                    section_name,
                    SHT_PROGBITS,
                    _shf_from_pf(flags),
                    vaddr,
                    bytes(data),
                    align if vaddr % align == 0 else 1,
                    index,
                )
            )
        return index

    def add_section(
        self,
        name: str,
        addr: int,
        data: bytes,
        *,
        flags: int = SHF_ALLOC,
        sh_type: int = SHT_PROGBITS,
        in_segment: bool = True,
        align: int = 4,
    ) -> None:
        """Add a section named ``name`` whose contents are ``data`` at address ``addr``.

        With ``in_segment`` (the normal case for allocated sections such as
        ``.resource_table``) the bytes become part of loaded memory: they overwrite the file
        image of the segment whose ``[vaddr, vaddr + filesz)`` covers them, or a new PT_LOAD
        segment is created for them. Without it the section is "loose": its bytes sit in the
        file outside every segment, with ``sh_addr = addr`` as given (0 for non-alloc sections).
        ``SHT_NOBITS`` sections take only their size from ``data`` and write no file bytes.
        """
        if align < 1 or align & (align - 1):
            raise ValueError(f"align must be a power of two, not {align}")
        self._check_addr("section addr", addr, len(data))
        if not in_segment:
            self._sections.append(_Section(name, sh_type, flags, addr, bytes(data), align, None))
            return
        end = addr + len(data)
        for i, seg in enumerate(self._segments):
            covered = seg.memsz if sh_type == SHT_NOBITS else len(seg.data)
            if seg.vaddr <= addr and end <= seg.vaddr + covered:
                if sh_type != SHT_NOBITS:
                    seg.data[addr - seg.vaddr : end - seg.vaddr] = data
                self._sections.append(_Section(name, sh_type, flags, addr, bytes(data), align, i))
                return
        nobits = sh_type == SHT_NOBITS
        index = self.add_segment(
            addr,
            b"" if nobits else data,
            memsz=len(data),
            flags=_pf_from_shf(flags),
            align=max(align, 4),
        )
        self._sections.append(_Section(name, sh_type, flags, addr, bytes(data), align, index))

    def add_program_name(self, name: str) -> None:
        """Add the non-alloc ``.aioamp.program`` section: ``name`` (ASCII) plus a NUL.

        The simulator reads it to pick the Python program that plays the remote firmware.
        """
        self.add_section(
            PROGRAM_SECTION, 0, name.encode("ascii") + b"\0", flags=0, in_segment=False, align=1
        )

    def build(self) -> bytes:
        """Lay out and serialize the image."""
        is64 = self.elf_class == 64
        ehdr, phdr, shdr = (_EHDR64, _PHDR64, _SHDR64) if is64 else (_EHDR32, _PHDR32, _SHDR32)
        word = 8 if is64 else 4

        offset = ehdr.size
        phoff = offset if self._segments else 0
        offset += phdr.size * len(self._segments)
        for seg in self._segments:
            # gABI: p_offset must be congruent to p_vaddr modulo p_align.
            offset += (seg.vaddr - offset) % seg.align
            seg.offset = offset
            offset += len(seg.data)
        for sec in self._sections:
            if sec.segment is None:
                offset = _align_up(offset, sec.align)
                sec.offset = offset
                if sec.sh_type != SHT_NOBITS:
                    offset += len(sec.data)

        shstrtab = bytearray(b"\0")
        name_offsets: dict[str, int] = {}
        for name in [sec.name for sec in self._sections] + [".shstrtab"]:
            if name not in name_offsets:
                name_offsets[name] = len(shstrtab)
                shstrtab += name.encode("ascii") + b"\0"
        shstrtab_offset = offset
        offset += len(shstrtab)
        shoff = _align_up(offset, word)
        shnum = len(self._sections) + 2

        out = bytearray(shoff + shdr.size * shnum)
        ident = ELFMAG + bytes(
            [ELFCLASS64 if is64 else ELFCLASS32, _ELFDATA2LSB, _EV_CURRENT, _ELFOSABI_NONE]
        )
        ehdr.pack_into(
            out,
            0,
            ident.ljust(16, b"\0"),
            self.e_type,
            self.machine,
            _EV_CURRENT,
            self.entry,
            phoff,
            shoff,
            self.e_flags,
            ehdr.size,
            phdr.size if self._segments else 0,
            len(self._segments),
            shdr.size,
            shnum,
            shnum - 1,  # e_shstrndx: .shstrtab is last
        )
        for i, seg in enumerate(self._segments):
            at = phoff + i * phdr.size
            filesz = len(seg.data)
            if is64:
                phdr.pack_into(
                    out, at, PT_LOAD, seg.flags, seg.offset, seg.vaddr, seg.paddr, filesz,
                    seg.memsz, seg.align,
                )  # fmt: skip
            else:
                phdr.pack_into(
                    out, at, PT_LOAD, seg.offset, seg.vaddr, seg.paddr, filesz, seg.memsz,
                    seg.flags, seg.align,
                )  # fmt: skip
            out[seg.offset : seg.offset + filesz] = seg.data

        at = shoff + shdr.size  # entry 0 is the all-zero SHN_UNDEF header
        for sec in self._sections:
            if sec.segment is None:
                sh_offset = sec.offset
                if sec.sh_type != SHT_NOBITS:
                    out[sh_offset : sh_offset + len(sec.data)] = sec.data
            else:
                seg = self._segments[sec.segment]
                sh_offset = seg.offset + (sec.addr - seg.vaddr)
                if sec.sh_type == SHT_NOBITS:
                    sh_offset = min(sh_offset, seg.offset + len(seg.data))
            shdr.pack_into(
                out, at, name_offsets[sec.name], sec.sh_type, sec.flags, sec.addr, sh_offset,
                len(sec.data), 0, 0, sec.align, 0,
            )  # fmt: skip
            at += shdr.size
        out[shstrtab_offset : shstrtab_offset + len(shstrtab)] = shstrtab
        shdr.pack_into(
            out, at, name_offsets[".shstrtab"], SHT_STRTAB, 0, 0, shstrtab_offset, len(shstrtab),
            0, 0, 1, 0,
        )  # fmt: skip
        return bytes(out)


def build_firmware(
    entry: int,
    segments: Iterable[tuple[int, bytes] | tuple[int, bytes, int]],
    resource_table: bytes | None = None,
    rsc_addr: int | None = None,
    program: str | None = None,
    *,
    machine: int = EM_ARM,
    elf_class: int = 32,
) -> bytes:
    """Build a firmware image in one call.

    Args:
        entry: the entry point.
        segments: ``(paddr, data)`` or ``(paddr, data, memsz)`` per PT_LOAD segment (R+X);
            program headers are written in ascending ``paddr`` order.
        resource_table: encoded resource table; placed in its own R+W PT_LOAD segment at
            ``rsc_addr`` with a ``.resource_table`` section covering it.
        rsc_addr: where the resource table is loaded; required with ``resource_table``.
        program: the ``.aioamp.program`` name, if any.
        machine: ``e_machine``.
        elf_class: 32 or 64.
    """
    # (paddr, data, memsz, flags, section name), sorted: the gABI wants PT_LOAD entries in
    # ascending address order.
    specs: list[tuple[int, bytes, int | None, int, str | None]] = [
        (s[0], s[1], s[2] if len(s) == 3 else None, PF_R | PF_X, None) for s in segments
    ]
    if resource_table is not None:
        if rsc_addr is None:
            raise ValueError("rsc_addr is required with a resource table")
        specs.append((rsc_addr, resource_table, None, PF_R | PF_W, RESOURCE_TABLE_SECTION))
    elif rsc_addr is not None:
        raise ValueError("rsc_addr given without a resource table")
    builder = ElfBuilder(machine=machine, elf_class=elf_class, entry=entry)
    for paddr, data, memsz, flags, section in sorted(specs, key=lambda spec: spec[0]):
        builder.add_segment(paddr, data, memsz=memsz, flags=flags, section_name=section)
    if program is not None:
        builder.add_program_name(program)
    return builder.build()
