"""Tests of the ELF firmware loader (remoteproc.firmware) and writer (remoteproc.elfwriter)."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remoteproc.elfwriter import (
    EM_AARCH64,
    PF_R,
    PF_W,
    PF_X,
    PROGRAM_SECTION,
    RESOURCE_TABLE_SECTION,
    SHF_ALLOC,
    SHF_WRITE,
    SHT_NOBITS,
    ElfBuilder,
    build_firmware,
)
from remoteproc.errors import FirmwareError
from remoteproc.firmware import (
    FirmwareImage,
    LoadOp,
    load_firmware,
    load_firmware_file,
)

# struct resource_table { u32 ver; u32 num; u32 reserved[2]; } with no entries.
EMPTY_RSC = struct.pack("<IIII", 1, 0, 0, 0)
CODE = bytes(range(16))


def _image(elf_class: int = 32) -> bytes:
    """Code with a .bss tail at 0x1000, data at 0x8000, resource table at 0x3000, a program."""
    return build_firmware(
        0x1000,
        [(0x1000, CODE, 0x40), (0x8000, b"data")],
        EMPTY_RSC,
        0x3000,
        "echo",
        machine=EM_AARCH64 if elf_class == 64 else 40,
        elf_class=elf_class,
    )


@pytest.mark.parametrize("elf_class", [32, 64])
def test_load_roundtrip(elf_class: int) -> None:
    image = load_firmware(_image(elf_class), name="fw.elf")
    assert image.name == "fw.elf"
    assert image.entry == 0x1000
    assert image.elf_class == elf_class
    assert image.machine == ("EM_AARCH64" if elf_class == 64 else "EM_ARM")
    # Program headers are sorted by address: code, resource table, data.
    assert [(s.index, s.paddr, s.filesz, s.memsz) for s in image.segments] == [
        (0, 0x1000, 16, 0x40),
        (1, 0x3000, 16, 16),
        (2, 0x8000, 4, 4),
    ]
    assert image.segments[0].data == CODE
    assert image.segments[0].flags == PF_R | PF_X
    assert image.segments[1].flags == PF_R | PF_W
    assert image.resource_table is not None
    assert (image.resource_table.addr, image.resource_table.size) == (0x3000, 16)
    assert image.resource_table.data == EMPTY_RSC
    assert image.program == "echo"
    assert image.sections == (RESOURCE_TABLE_SECTION, PROGRAM_SECTION, ".shstrtab")
    assert list(image.iter_load()) == [
        LoadOp(0x1000, CODE, 0x30),
        LoadOp(0x3000, EMPTY_RSC, 0),
        LoadOp(0x8000, b"data", 0),
    ]


def test_zero_fill_applies_when_loaded_into_memory() -> None:
    image = load_firmware(_image())
    memory = bytearray(b"\xaa" * 0x10000)
    for op in image.iter_load():
        memory[op.paddr : op.paddr + len(op.data)] = op.data
        end = op.paddr + len(op.data)
        memory[end : end + op.zero_fill] = bytes(op.zero_fill)
    assert memory[0x1000:0x1010] == CODE
    assert memory[0x1010:0x1040] == bytes(0x30)
    assert memory[0x1040] == 0xAA
    assert memory[0x3000:0x3010] == EMPTY_RSC


def test_segment_containing_and_to_dict() -> None:
    image = load_firmware(_image(), name="fw")
    assert image.segment_containing(0x1020, 0x20) is image.segments[0]  # inside the .bss tail
    assert image.segment_containing(0x1020, 0x21) is None
    assert image.segment_containing(0x2000) is None
    summary = image.to_dict()
    json.dumps(summary)
    assert summary["class"] == "ELF32"
    assert summary["machine"] == "EM_ARM"
    assert summary["resource_table"] == {"addr": 0x3000, "size": 16}
    assert summary["segments"][0] == {
        "index": 0,
        "paddr": 0x1000,
        "vaddr": 0x1000,
        "filesz": 16,
        "memsz": 0x40,
        "flags": 5,
        "perms": "R E",
    }


def test_resource_table_and_program_are_optional() -> None:
    image = load_firmware(build_firmware(0x100, [(0x100, CODE)]))
    assert image.resource_table is None
    assert image.program is None
    assert image.to_dict()["resource_table"] is None


def test_resource_table_inside_a_larger_segment() -> None:
    builder = ElfBuilder(entry=0x2000)
    builder.add_segment(0x2000, bytes(0x100), flags=PF_R | PF_W, section_name=".data")
    builder.add_section(RESOURCE_TABLE_SECTION, 0x2040, EMPTY_RSC, flags=SHF_ALLOC | SHF_WRITE)
    image = load_firmware(builder.build())
    assert len(image.segments) == 1
    assert image.resource_table is not None
    assert image.resource_table.addr == 0x2040
    assert image.segments[0].data[0x40:0x50] == EMPTY_RSC
    assert image.sections == (".data", RESOURCE_TABLE_SECTION, ".shstrtab")


def test_loads_by_paddr_not_vaddr() -> None:
    builder = ElfBuilder(entry=0x8000_0000)
    builder.add_segment(0x1000, CODE, vaddr=0x8000_0000)
    image = load_firmware(builder.build())
    assert (image.segments[0].paddr, image.segments[0].vaddr) == (0x1000, 0x8000_0000)
    assert [op.paddr for op in image.iter_load()] == [0x1000]


def test_empty_segment_is_kept_but_not_loaded() -> None:
    builder = ElfBuilder(entry=0x1000)
    builder.add_segment(0x1000, CODE)
    builder.add_segment(0x5000, b"")
    image = load_firmware(builder.build())
    assert len(image.segments) == 2
    assert [op.paddr for op in image.iter_load()] == [0x1000]


def test_load_firmware_file(tmp_path: Path) -> None:
    path = tmp_path / "echo.elf"
    path.write_bytes(_image())
    assert load_firmware_file(path).name == "echo.elf"
    assert load_firmware_file(str(path), name="other").name == "other"
    with pytest.raises(FileNotFoundError):
        load_firmware_file(tmp_path / "missing.elf")


def test_image_is_frozen() -> None:
    image = load_firmware(_image())
    with pytest.raises(AttributeError):
        image.entry = 0  # type: ignore[misc]
    assert isinstance(image, FirmwareImage)


# -- the writer ------------------------------------------------------------------------------


def test_golden_elf32_header() -> None:
    """elfwriter's headers match a hand-packed Elf32_Ehdr / Elf32_Phdr byte for byte."""
    builder = ElfBuilder(entry=0x1000)
    builder.add_segment(0x1000, bytes(range(8)))
    image = builder.build()
    # Layout: Ehdr (52) | Phdr (32) at 52 | data (8) at 84 | "\0.shstrtab\0" (11) at 92 |
    # Shdr[2] at 104 (4-aligned).
    ehdr = struct.pack(
        "<4sBBBB8sHHIIIIIHHHHHH",
        b"\x7fELF",
        1,  # ELFCLASS32
        1,  # ELFDATA2LSB
        1,  # EV_CURRENT
        0,  # ELFOSABI_NONE
        bytes(8),
        2,  # ET_EXEC
        40,  # EM_ARM
        1,  # e_version
        0x1000,  # e_entry
        52,  # e_phoff
        104,  # e_shoff
        0x05000000,  # EF_ARM_EABI_VER5
        52,  # e_ehsize
        32,  # e_phentsize
        1,  # e_phnum
        40,  # e_shentsize
        2,  # e_shnum
        1,  # e_shstrndx
    )
    phdr = struct.pack("<8I", 1, 84, 0x1000, 0x1000, 8, 8, PF_R | PF_X, 4)
    assert image[:52] == ehdr
    assert image[52:84] == phdr
    assert image[84:92] == bytes(range(8))
    assert image[92:103] == b"\0.shstrtab\0"
    assert image[104:144] == bytes(40)  # SHN_UNDEF
    assert image[144:184] == struct.pack("<10I", 1, 3, 0, 0, 92, 11, 0, 0, 1, 0)
    assert len(image) == 184

    elf = ELFFile(io.BytesIO(image))
    assert elf.header["e_machine"] == "EM_ARM"
    assert elf.header["e_entry"] == 0x1000
    assert elf.get_segment(0).data() == bytes(range(8))
    assert [s.name for s in elf.iter_sections()] == ["", ".shstrtab"]


def test_writer_rejects_caller_mistakes() -> None:
    builder = ElfBuilder()
    builder.add_segment(0x1000, CODE, memsz=0x100)
    with pytest.raises(ValueError, match="overlaps segment 0"):
        builder.add_segment(0x10F0, CODE)
    with pytest.raises(ValueError, match="smaller than the data"):
        builder.add_segment(0x2000, CODE, memsz=4)
    with pytest.raises(ValueError, match="does not fit ELF32"):
        builder.add_segment(0xFFFF_FFF8, CODE)
    with pytest.raises(ValueError, match="elf_class"):
        ElfBuilder(elf_class=16)
    with pytest.raises(ValueError, match="rsc_addr"):
        build_firmware(0, [(0, CODE)], EMPTY_RSC, None)
    with pytest.raises(ValueError, match="ascii"):
        builder.add_program_name("caf\u00e9")


def _readelf(image: bytes, tmp_path: Path) -> tuple[str, str]:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("binutils readelf is not installed")
    path = tmp_path / "fw.elf"
    path.write_bytes(image)
    proc = subprocess.run(
        [readelf, "-a", "-W", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


@pytest.mark.parametrize("elf_class", [32, 64])
def test_readelf_accepts_written_images(elf_class: int, tmp_path: Path) -> None:
    out, err = _readelf(_image(elf_class), tmp_path)
    for text in (out, err):
        assert "Warning" not in text
        assert "Error" not in text
    assert RESOURCE_TABLE_SECTION in out
    assert PROGRAM_SECTION in out
    assert "Entry point address:               0x1000" in out
    assert ("AArch64" if elf_class == 64 else "Machine:                           ARM") in out


def test_readelf_accepts_sections_in_segments(tmp_path: Path) -> None:
    builder = ElfBuilder(entry=0x2000)
    builder.add_segment(0x2000, bytes(0x100), flags=PF_R | PF_W, section_name=".data")
    builder.add_section(RESOURCE_TABLE_SECTION, 0x2040, EMPTY_RSC, flags=SHF_ALLOC | SHF_WRITE)
    builder.add_section(".bss", 0x9000, bytes(0x40), flags=SHF_ALLOC | SHF_WRITE, sh_type=8)
    builder.add_program_name("ping")
    out, err = _readelf(builder.build(), tmp_path)
    assert "Warning" not in out + err
    assert "Error" not in out + err
    assert ".data .resource_table" in out  # section-to-segment mapping


# -- malformed images ------------------------------------------------------------------------

# Elf32_Ehdr field offsets.
E_TYPE, E_PHOFF, E_SHOFF, E_PHENTSIZE, E_PHNUM, E_SHSTRNDX = 16, 28, 32, 42, 44, 50
# Elf32_Phdr / Elf32_Shdr field offsets.
P_TYPE, P_OFFSET, P_PADDR, P_FILESZ, P_MEMSZ = 0, 4, 12, 16, 20
SH_OFFSET, SH_SIZE = 16, 20


def _patch(image: bytes, offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(image)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def _phdr(field: int, index: int = 0) -> int:
    return 52 + 32 * index + field


def _shdr(image: bytes, field: int, index: int) -> int:
    (shoff,) = struct.unpack_from("<I", image, E_SHOFF)
    return int(shoff) + 40 * index + field


def _no_load(image: bytes) -> bytes:
    for i in range(3):
        image = _patch(image, _phdr(P_TYPE, i), "<I", 4)  # PT_NOTE
    return image


def _program(raw: bytes) -> bytes:
    builder = ElfBuilder()
    builder.add_segment(0, CODE)
    builder.add_section(PROGRAM_SECTION, 0, raw, flags=0, in_segment=False, align=1)
    return builder.build()


def _rsc_section(**kw: int) -> bytes:
    builder = ElfBuilder()
    builder.add_segment(0, CODE)
    builder.add_section(RESOURCE_TABLE_SECTION, 0x9000, EMPTY_RSC, in_segment=False, **kw)
    return builder.build()


GOOD = _image()
MALFORMED: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty", lambda: b"", "empty file"),
    ("not-elf", lambda: b"MZ\x90\x00" + bytes(100), "bad magic 4d5a9000"),
    ("short-magic", lambda: b"\x7fEL", "truncated ELF identification"),
    ("truncated-ident", lambda: GOOD[:10], "truncated ELF identification"),
    ("truncated-header", lambda: GOOD[:40], "truncated ELF header: 40 bytes"),
    ("big-endian", lambda: _patch(GOOD, 5, "B", 2), "big-endian images are not supported"),
    ("bad-class", lambda: _patch(GOOD, 4, "B", 3), "bad ELF class byte 0x3"),
    ("bad-data", lambda: _patch(GOOD, 5, "B", 0), "bad ELF data encoding byte 0x0"),
    ("relocatable", lambda: _patch(GOOD, E_TYPE, "<H", 1), "not an executable image"),
    ("no-phdrs", lambda: _patch(GOOD, E_PHNUM, "<H", 0), "no program headers"),
    ("phentsize", lambda: _patch(GOOD, E_PHENTSIZE, "<H", 16), "e_phentsize is 16"),
    ("phdrs-past-eof", lambda: _patch(GOOD, E_PHNUM, "<H", 200), "program header table"),
    ("phoff-past-eof", lambda: _patch(GOOD, E_PHOFF, "<I", 1 << 20), "program header table"),
    ("filesz>memsz", lambda: _patch(GOOD, _phdr(P_MEMSZ), "<I", 8), "segment 0: p_filesz 0x10"),
    (
        "segment-past-eof",
        lambda: _patch(GOOD, _phdr(P_OFFSET, 2), "<I", len(GOOD) - 2),
        "segment 2: file data",
    ),
    (
        "segment-wraps",
        lambda: _patch(GOOD, _phdr(P_PADDR), "<I", 0xFFFF_FFF0),
        "segment 0: [0xfffffff0, 0x100000030) wraps",
    ),
    ("no-pt-load", lambda: _no_load(GOOD), "no PT_LOAD segment"),
    ("program-non-ascii", lambda: _program(b"caf\xc3\xa9\0"), "program name is not ASCII"),
    ("program-empty", lambda: _program(b"\0junk"), "program name is empty"),
    ("shdrs-past-eof", lambda: _patch(GOOD, E_SHOFF, "<I", len(GOOD) - 20), "section header table"),
    ("shstrndx", lambda: _patch(GOOD, E_SHSTRNDX, "<H", 99), "string table index 99"),
    (
        "rsc-past-eof",
        lambda: _patch(GOOD, _shdr(GOOD, SH_SIZE, 1), "<I", 1 << 20),
        "section .resource_table: file data",
    ),
    (
        "name-past-shstrtab",
        lambda: _patch(GOOD, _shdr(GOOD, 0, 1), "<I", 0x1000),
        "section 1: name offset 0x1000",
    ),
    ("rsc-not-loaded", lambda: _rsc_section(flags=SHF_ALLOC), "is not inside any PT_LOAD"),
    ("rsc-nobits", lambda: _rsc_section(sh_type=SHT_NOBITS), "no file contents (SHT_NOBITS)"),
]


@pytest.mark.parametrize(
    ("make", "message"), [(m, msg) for _, m, msg in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_images_are_rejected(make: Callable[[], bytes], message: str) -> None:
    with pytest.raises(FirmwareError) as info:
        load_firmware(make())
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert info.value.__cause__ is None  # no elftools exception chained into ours


def _load_or_firmware_error(data: bytes) -> None:
    try:
        image = load_firmware(data)
    except FirmwareError:
        return
    # Whatever loads is internally consistent.
    assert image.segments
    for seg in image.segments:
        assert len(seg.data) == seg.filesz <= seg.memsz
    if image.resource_table is not None:
        rsc = image.resource_table
        assert image.segment_containing(rsc.addr, rsc.size) is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_load_or_raise_firmware_error(data: bytes) -> None:
    _load_or_firmware_error(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_image(32), _image(64)]),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_corrupted_images_load_or_raise_firmware_error(
    image: bytes, edits: list[tuple[int, int]]
) -> None:
    buf = bytearray(image)
    for offset, value in edits:
        buf[offset % len(buf)] = value
    _load_or_firmware_error(bytes(buf))


@pytest.mark.parametrize("elf_class", [32, 64])
def test_every_truncation_is_a_firmware_error(elf_class: int) -> None:
    """Every byte of the image is referenced: the section header table ends the file (the
    loader checks it lies inside), so every shorter prefix must be refused, none loaded."""
    image = _image(elf_class)
    shoff, shentsize, shnum = (
        struct.unpack_from("<IxxxxxxxxxxHH", image, E_SHOFF)
        if elf_class == 32
        else struct.unpack_from("<QxxxxxxxxxxHH", image, 0x28)
    )
    assert shoff + shentsize * shnum == len(image)
    loaded = []
    for length in range(len(image)):
        try:
            load_firmware(image[:length])
        except FirmwareError:
            continue
        loaded.append(length)
    assert loaded == []
    assert load_firmware(image).segments


# -- a real toolchain's output ---------------------------------------------------------------

C_SOURCE = """
__attribute__((section(".resource_table")))
const unsigned int rsc[5] = {1, 0, 0, 0, 0};

int main(void) { return (int)rsc[0] - 1; }
"""


def test_host_executable_built_by_gcc(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "fw.c"
    src.write_text(C_SOURCE)
    exe = tmp_path / "fw"
    proc = subprocess.run(
        [gcc, "-O0", "-o", str(exe), str(src)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"gcc cannot build a host executable here: {proc.stderr[-500:]}")
    data = exe.read_bytes()
    if data[4:6] != b"\x02\x01":
        pytest.skip("host is not a little-endian 64-bit ELF platform")
    image = load_firmware_file(exe)
    assert image.elf_class == 64
    assert image.name == "fw"
    rsc = image.resource_table
    assert rsc is not None
    assert rsc.size == 20
    assert rsc.data == struct.pack("<5I", 1, 0, 0, 0, 0)
    segment = image.segment_containing(rsc.addr, rsc.size)
    assert segment is not None
    assert segment.data[rsc.addr - segment.paddr :][:20] == rsc.data
    assert image.program is None
    assert RESOURCE_TABLE_SECTION in image.sections
