"""Firmware images: ELF executables for a remote processor, parsed into our own frozen types.

Theory of operation: ``load_firmware`` turns untrusted bytes into a :class:`FirmwareImage` or a
:class:`FirmwareError`, nothing else. It works in three steps:

1. ``e_ident`` is checked by hand (magic, class, byte order, header length), so the common
   mistakes get plain messages ("big-endian images are not supported").
2. pyelftools decodes the headers (``Elf_Ehdr``, ``Elf_Phdr``, ``Elf_Shdr``) and nothing more; it
   is the only use of pyelftools in aioamp, and every exception it raises becomes a
   ``FirmwareError``. Section contents are sliced from the file by us, after a bounds check, so
   no compressed or linked section is ever interpreted.
3. Every table, segment and section we use is checked against the file size and the address
   space, following Linux ``rproc_elf_sanity_check`` / ``rproc_elf_load_segments``: a PT_LOAD
   with ``p_filesz > p_memsz`` or file bytes past EOF is rejected naming its program header index.

Loading is by ``p_paddr``, the device address, as Linux does; ``p_memsz - p_filesz`` is zero
filled. The memory layer does the writes (:meth:`FirmwareImage.iter_load`); this module does no
I/O beyond :func:`read_firmware_file`, which reads only regular files up to a size cap.

The ``.resource_table`` section is found by name, like Linux ``rproc_elf_find_loaded_rsc_table``;
its ``sh_addr`` is taken as a device address (the same space as ``p_paddr``). Unlike Linux, the
table must lie inside a PT_LOAD segment's ``[p_paddr, p_paddr + p_memsz)``: the host rewrites the
loaded copy (vring addresses, vdev status) for the remote to read, so a table outside loaded
memory could not work and is rejected at load time rather than at boot. A missing table is fine:
the image has no vdevs. ``.aioamp.program`` (non-alloc, NUL-terminated ASCII) names the Python
program the simulator runs as the remote side.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
from elftools.common.exceptions import DWARFError, ELFError
from elftools.common.utils import struct_parse
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile

from .errors import FirmwareError, FirmwareFileError
from .image import (
    ELFMAG,
    PROGRAM_SECTION,
    RESOURCE_TABLE_SECTION,
    FirmwareImage,
    LoadOp,
    ResourceTableLocation,
    Segment,
)

__all__ = [
    "MAX_FIRMWARE_SIZE",
    "PROGRAM_SECTION",
    "RESOURCE_TABLE_SECTION",
    "FirmwareImage",
    "LoadOp",
    "ResourceTableLocation",
    "Segment",
    "load_firmware",
    "load_firmware_file",
    "read_firmware_file",
]

_EI_NIDENT = 16
_EI_CLASS, _EI_DATA = 4, 5
_EHDR_SIZE = {32: 52, 64: 64}  # sizeof(Elf32_Ehdr), sizeof(Elf64_Ehdr)
_PHDR_SIZE = {32: 32, 64: 56}  # sizeof(Elf32_Phdr), sizeof(Elf64_Phdr)
_SHDR_SIZE = {32: 40, 64: 64}  # sizeof(Elf32_Shdr), sizeof(Elf64_Shdr)
_PN_XNUM = 0xFFFF
_SHN_UNDEF = 0
_SHF_COMPRESSED = 0x800

# Everything pyelftools (and the construct library it vendors) lets escape on malformed input.
_PARSE_ERRORS = (
    ELFError,
    DWARFError,
    ConstructError,
    struct.error,
    IndexError,
    KeyError,
    ValueError,
    EOFError,
    OverflowError,
)


@attrs.frozen
class _SectionHeader:
    name: str
    sh_type: str | int
    flags: int
    addr: int
    offset: int
    size: int


@contextmanager
def _elftools_errors(what: str) -> Iterator[None]:
    """Turn whatever pyelftools raises on bad input into a FirmwareError."""
    try:
        yield
    except _PARSE_ERRORS as exc:
        raise FirmwareError(f"malformed ELF {what}: {exc or type(exc).__name__}") from None


def _check_ident(data: bytes) -> int:
    """Check ``e_ident`` and the header length by hand; return the ELF class (32/64)."""
    if not data:
        raise FirmwareError("empty file: not an ELF image")
    head = data[:4]
    if head != ELFMAG[: len(head)]:
        raise FirmwareError(f"not an ELF image (bad magic {head.hex()}, expected 7f454c46)")
    if len(data) < _EI_NIDENT:
        raise FirmwareError(f"truncated ELF identification ({len(data)} bytes)")
    ei_class = data[_EI_CLASS]
    if ei_class not in (1, 2):
        raise FirmwareError(f"bad ELF class byte {ei_class:#x} (expected 1 or 2)")
    ei_data = data[_EI_DATA]
    if ei_data == 2:
        raise FirmwareError("big-endian images are not supported")
    if ei_data != 1:
        raise FirmwareError(f"bad ELF data encoding byte {ei_data:#x} (expected 1)")
    elf_class = 32 if ei_class == 1 else 64
    if len(data) < _EHDR_SIZE[elf_class]:
        raise FirmwareError(
            f"truncated ELF header: {len(data)} bytes, ELF{elf_class} needs {_EHDR_SIZE[elf_class]}"
        )
    return elf_class


def _check_table(what: str, offset: int, count: int, entsize: int, file_size: int) -> None:
    end = offset + count * entsize
    if end > file_size:
        raise FirmwareError(
            f"{what} [{offset:#x}, {end:#x}) runs past the end of the file ({file_size:#x} bytes)"
        )


def _file_slice(data: bytes, what: str, offset: int, size: int) -> bytes:
    if offset + size > len(data):
        raise FirmwareError(
            f"{what}: file data [{offset:#x}, {offset + size:#x}) is past the end of the file "
            f"({len(data):#x} bytes)"
        )
    return data[offset : offset + size]


def _read_sections(elf: ELFFile, data: bytes, elf_class: int) -> list[_SectionHeader]:
    """Decode the section header table and names, bounds-checked against the file."""
    header = elf.header
    if header["e_shoff"] == 0:
        return []
    if header["e_shentsize"] != _SHDR_SIZE[elf_class]:
        raise FirmwareError(
            f"e_shentsize is {header['e_shentsize']}, ELF{elf_class} needs {_SHDR_SIZE[elf_class]}"
        )
    # Extended numbering keeps the real count / string table index in section 0.
    _check_table("section header table", header["e_shoff"], 1, _SHDR_SIZE[elf_class], len(data))
    with _elftools_errors("section header table"):
        count = int(elf.num_sections())
        shstrndx = int(elf.get_shstrndx())
    _check_table("section header table", header["e_shoff"], count, _SHDR_SIZE[elf_class], len(data))
    if count == 0:
        return []
    if shstrndx == _SHN_UNDEF or shstrndx >= count:
        raise FirmwareError(f"section name string table index {shstrndx} is invalid")
    raw = []
    with _elftools_errors("section header"):
        for i in range(count):
            sh = struct_parse(
                elf.structs.Elf_Shdr, elf.stream, header["e_shoff"] + i * _SHDR_SIZE[elf_class]
            )
            raw.append(
                (
                    int(sh["sh_name"]),
                    sh["sh_type"],
                    int(sh["sh_flags"]),
                    int(sh["sh_addr"]),
                    int(sh["sh_offset"]),
                    int(sh["sh_size"]),
                )
            )
    _, strtype, _, _, stroff, strsize = raw[shstrndx]
    if strtype == "SHT_NOBITS":
        raise FirmwareError("section name string table has no file contents (SHT_NOBITS)")
    strtab = _file_slice(data, "section name string table", stroff, strsize)
    sections = []
    for i, (name_off, sh_type, flags, addr, offset, size) in enumerate(raw):
        if name_off and name_off >= len(strtab):
            raise FirmwareError(f"section {i}: name offset {name_off:#x} is outside .shstrtab")
        name = strtab[name_off:].split(b"\0", 1)[0].decode("utf-8", "replace")
        sections.append(_SectionHeader(name, sh_type, flags, addr, offset, size))
    return sections


def _section_bytes(data: bytes, sec: _SectionHeader) -> bytes:
    if sec.sh_type == "SHT_NOBITS":
        raise FirmwareError(f"section {sec.name} has no file contents (SHT_NOBITS)")
    if sec.flags & _SHF_COMPRESSED:
        raise FirmwareError(f"section {sec.name} is compressed (SHF_COMPRESSED)")
    return _file_slice(data, f"section {sec.name}", sec.offset, sec.size)


def _decode_program(raw: bytes) -> str:
    name = raw.split(b"\0", 1)[0]
    try:
        text = name.decode("ascii")
    except UnicodeDecodeError:
        raise FirmwareError(f"section {PROGRAM_SECTION}: program name is not ASCII") from None
    if not text:
        raise FirmwareError(f"section {PROGRAM_SECTION}: program name is empty")
    return text


def load_firmware(data: bytes | bytearray | memoryview, *, name: str = "") -> FirmwareImage:
    """Parse and validate an ELF firmware image.

    Args:
        data: the whole file.
        name: a label for messages and ``to_dict`` (usually the file name).

    Raises:
        FirmwareError: the bytes are not a loadable little-endian ELF32/ELF64 executable.
    """
    data = bytes(data)
    elf_class = _check_ident(data)
    with _elftools_errors("header"):
        elf = ELFFile(io.BytesIO(data))
        header = elf.header
        e_type = header["e_type"]
        machine: str | int = header["e_machine"]
        entry = int(header["e_entry"])
        phoff, phnum = int(header["e_phoff"]), int(header["e_phnum"])
        phentsize = int(header["e_phentsize"])
    if e_type not in ("ET_EXEC", "ET_DYN"):
        raise FirmwareError(f"not an executable image (e_type {e_type})")

    if phnum == 0:
        raise FirmwareError("no program headers: no PT_LOAD segment to load")
    if phnum == _PN_XNUM:
        raise FirmwareError("extended program header numbering (PN_XNUM) is not supported")
    if phentsize != _PHDR_SIZE[elf_class]:
        raise FirmwareError(
            f"e_phentsize is {phentsize}, ELF{elf_class} needs {_PHDR_SIZE[elf_class]}"
        )
    _check_table("program header table", phoff, phnum, phentsize, len(data))

    limit = 1 << elf_class
    segments = []
    for i in range(phnum):
        with _elftools_errors(f"program header {i}"):
            ph = struct_parse(elf.structs.Elf_Phdr, elf.stream, phoff + i * phentsize)
            p_type = ph["p_type"]
            fields = [int(ph[k]) for k in ("p_offset", "p_paddr", "p_vaddr", "p_filesz", "p_memsz")]
            flags = int(ph["p_flags"])
        if p_type != "PT_LOAD":
            continue
        offset, paddr, vaddr, filesz, memsz = fields
        if filesz > memsz:
            raise FirmwareError(f"segment {i}: p_filesz {filesz:#x} exceeds p_memsz {memsz:#x}")
        if paddr + memsz > limit:
            raise FirmwareError(
                f"segment {i}: [{paddr:#x}, {paddr + memsz:#x}) wraps the {elf_class}-bit "
                "address space"
            )
        seg_data = _file_slice(data, f"segment {i}", offset, filesz)
        segments.append(Segment(i, paddr, vaddr, filesz, memsz, flags, seg_data))
    if not segments:
        raise FirmwareError("no PT_LOAD segment: nothing to load")

    sections = _read_sections(elf, data, elf_class)
    by_name: dict[str, _SectionHeader] = {}
    for sec in sections:
        by_name.setdefault(sec.name, sec)  # the first one wins, as in Linux rproc_elf_find_shdr

    image = FirmwareImage(
        name=name,
        entry=entry,
        elf_class=elf_class,
        machine=machine,
        segments=tuple(segments),
        sections=tuple(sec.name for sec in sections[1:]),
    )
    rsc_sec = by_name.get(RESOURCE_TABLE_SECTION)
    if rsc_sec is not None:
        rsc_data = _section_bytes(data, rsc_sec)
        if image.segment_containing(rsc_sec.addr, rsc_sec.size) is None:
            raise FirmwareError(
                f"section {RESOURCE_TABLE_SECTION} [{rsc_sec.addr:#x}, "
                f"{rsc_sec.addr + rsc_sec.size:#x}) is not inside any PT_LOAD segment"
            )
        image = attrs.evolve(
            image, resource_table=ResourceTableLocation(rsc_sec.addr, rsc_sec.size, rsc_data)
        )
    prog_sec = by_name.get(PROGRAM_SECTION)
    if prog_sec is not None:
        image = attrs.evolve(image, program=_decode_program(_section_bytes(data, prog_sec)))
    return image


def load_firmware_file(path: str | os.PathLike[str], *, name: str | None = None) -> FirmwareImage:
    """Read ``path`` (:func:`read_firmware_file`) and :func:`load_firmware` it; ``name``
    defaults to the file name.

    OSError from reading propagates unchanged: a missing file is not a malformed image.
    """
    data = read_firmware_file(path)
    return load_firmware(data, name=os.path.basename(os.fspath(path)) if name is None else name)


#: Firmware files are read whole, so a larger one is refused instead (remote processor images
#: are kilobytes to a few MiB).
MAX_FIRMWARE_SIZE = 64 << 20
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_file(path: str | os.PathLike[str], mode: int, size: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((k for test, k in _FILE_KINDS if test(mode)), "an unknown kind of file")
        raise FirmwareFileError(f"{os.fspath(path)}: not a regular file ({kind})")
    if size > MAX_FIRMWARE_SIZE:
        raise FirmwareFileError(
            f"{os.fspath(path)}: over {MAX_FIRMWARE_SIZE} bytes "
            f"({MAX_FIRMWARE_SIZE >> 20} MiB), the limit for firmware images"
        )


def read_firmware_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file ``path``, at most :data:`MAX_FIRMWARE_SIZE` of them.

    Checked before opening (opening a device can have side effects), opened without
    blocking (a FIFO swapped in meanwhile must not hang us) and checked again on the open
    descriptor, which is what is read.

    Raises:
        FirmwareFileError: not a regular file, or too large.
        OSError: the file cannot be opened or read (missing, no permission).
    """
    st = os.stat(path)
    _check_file(path, st.st_mode, st.st_size)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        _check_file(path, st.st_mode, st.st_size)
        data = f.read(MAX_FIRMWARE_SIZE + 1)
    _check_file(path, st.st_mode, len(data))  # it may have grown since
    return data
