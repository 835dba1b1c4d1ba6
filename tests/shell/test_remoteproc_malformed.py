"""Malformed firmware images and resource tables: each boot fails with a precise error and
leaves nothing behind (state offline, no start, no memory, no mapping, no task)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from conftest import running_tasks

from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.elfwriter import SHF_ALLOC, ElfBuilder, build_firmware
from remoteproc.errors import (
    BootError,
    DevmemNotAllowedError,
    FirmwareError,
    MemoryMapError,
    ResourceTableError,
)
from remoteproc.firmware import PROGRAM_SECTION, RESOURCE_TABLE_SECTION
from remoteproc.manager import RemoteprocManager
from remoteproc.rproc import FirmwareSource
from remoteproc.rsc_table import (
    FW_RSC_ADDR_ANY,
    RSC_NOTIFY_ID_ANY,
    Carveout,
    Devmem,
    Entry,
    Trace,
    Vdev,
    build_resource_table,
)
from transports.virtio.constants import VIRTIO_ID_RPMSG
from transports.virtio.vdev import VringInfo

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

# Our own layout (independent of the sample image): text carveout 0..0x10000 holding the code
# segment and the table at 0x8000, data carveout 0x20000..0x30000 holding the trace buffer.
TEXT, DATA, TABLE_DA, ENTRY = 0x0, 0x20000, 0x8000, 0x100
ANY = FW_RSC_ADDR_ANY
RING = VringInfo(da=ANY, align=0x1000, num=256, notifyid=RSC_NOTIFY_ID_ANY)
PROGRAM = "rpmsg-echo"


def entries(
    *,
    text: Carveout | None = None,
    data: Carveout | None = None,
    trace: Trace | None = None,
    vdev: Vdev | None = None,
    extra: tuple[Entry, ...] = (),
) -> list[Entry]:
    return [
        text or Carveout(da=TEXT, pa=ANY, len=0x10000, name="text"),
        data or Carveout(da=DATA, pa=ANY, len=0x10000, name="data"),
        trace or Trace(da=DATA, len=0x1000, name="trace0"),
        vdev
        or Vdev(id=VIRTIO_ID_RPMSG, notifyid=RSC_NOTIFY_ID_ANY, dfeatures=1, vrings=(RING,) * 2),
        *extra,
    ]


GOOD_TABLE = build_resource_table(entries())
# Byte offsets in GOOD_TABLE (header 16 bytes + 4 offsets, then the entries back to back).
OFFSETS = 16
TEXT_AT, DATA_AT, TRACE_AT, VDEV_AT = struct.unpack_from("<4I", GOOD_TABLE, OFFSETS)
VRING0 = VDEV_AT + 4 + 24  # type word + fw_rsc_vdev
VRING1 = VRING0 + 20


def image(
    table: bytes | None = GOOD_TABLE,
    *,
    program: str | None = PROGRAM,
    segments: tuple[tuple[int, bytes, int], ...] = ((TEXT, b"\xaa" * 0x100, 0x1000),),
    rsc_addr: int = TABLE_DA,
) -> bytes:
    return build_firmware(
        ENTRY,
        list(segments),
        resource_table=table,
        rsc_addr=rsc_addr if table is not None else None,
        program=program,
    )


def patched(fmt: str, at: int, *values: Any, table: bytes = GOOD_TABLE) -> bytes:
    raw = bytearray(table)
    struct.pack_into("<" + fmt, raw, at, *values)
    return bytes(raw)


def patched_image(fmt: str, at: int, *values: Any) -> bytes:
    raw = bytearray(image())
    struct.pack_into("<" + fmt, raw, at, *values)
    return bytes(raw)


def all_ptypes(value: int) -> bytes:
    raw = bytearray(image())
    (phoff,) = struct.unpack_from("<I", raw, 28)
    (phnum,) = struct.unpack_from("<H", raw, 44)
    for i in range(phnum):
        struct.pack_into("<I", raw, phoff + 32 * i, value)
    return bytes(raw)


def filesz_over_memsz() -> bytes:
    raw = bytearray(image())
    (phoff,) = struct.unpack_from("<I", raw, 28)
    struct.pack_into("<I", raw, phoff + 16, 0x2000)  # p_filesz of segment 0 (memsz 0x1000)
    return bytes(raw)


def no_program_headers() -> bytes:
    builder = ElfBuilder(entry=ENTRY)
    builder.add_program_name(PROGRAM)
    return builder.build()


def loose_table() -> bytes:
    """The .resource_table section points at 0x9000, which no PT_LOAD segment covers."""
    builder = ElfBuilder(entry=ENTRY)
    builder.add_segment(TEXT, b"\0" * 0x100, memsz=0x1000)
    builder.add_section(
        RESOURCE_TABLE_SECTION, 0x9000, GOOD_TABLE, flags=SHF_ALLOC, in_segment=False
    )
    builder.add_program_name(PROGRAM)
    return builder.build()


def empty_program_name() -> bytes:
    builder = ElfBuilder(entry=ENTRY)
    builder.add_segment(TEXT, b"\0" * 0x100, memsz=0x1000)
    builder.add_section(PROGRAM_SECTION, 0, b"\0", flags=0, in_segment=False, align=1)
    return builder.build()


def raw_table(*words: int, tail: bytes = b"") -> bytes:
    return struct.pack(f"<{len(words)}I", *words) + tail


@dataclass
class Case:
    id: str
    firmware: Callable[[], FirmwareSource | None]
    error: type[BaseException]
    match: str
    platform: dict[str, Any] = field(default_factory=dict)


NAME32 = b"A" * 32
DEVMEM = Devmem(da=0x6000_0000, pa=0x4A00_0000, len=0x1000, name="regs")
ALLOW = {"devmem_allowlist": ((0x4800_0000, 0x0100_0000),)}

CASES = [
    # -- not a loadable ELF ---------------------------------------------------------------------
    Case(
        "not-elf", lambda: b"MZ\x90\x00" + bytes(100), FirmwareError, "not an ELF image (bad magic"
    ),
    Case("empty-file", lambda: b"", FirmwareError, "empty file: not an ELF image"),
    Case(
        "truncated-ident",
        lambda: image()[:10],
        FirmwareError,
        "truncated ELF identification (10 bytes)",
    ),
    Case(
        "truncated-header",
        lambda: image()[:30],
        FirmwareError,
        "truncated ELF header: 30 bytes, ELF32 needs 52",
    ),
    Case("truncated-segments", lambda: image()[:0x100], FirmwareError, "past the end of the file"),
    Case(
        "big-endian",
        lambda: patched_image("B", 5, 2),
        FirmwareError,
        "big-endian images are not supported",
    ),
    Case("bad-class", lambda: patched_image("B", 4, 3), FirmwareError, "bad ELF class byte 0x3"),
    Case(
        "relocatable",
        lambda: patched_image("H", 16, 1),
        FirmwareError,
        "not an executable image (e_type ET_REL)",
    ),
    Case("no-program-headers", no_program_headers, FirmwareError, "no program headers"),
    Case("no-pt-load", lambda: all_ptypes(4), FirmwareError, "no PT_LOAD segment: nothing to load"),
    Case(
        "filesz-over-memsz",
        filesz_over_memsz,
        FirmwareError,
        "p_filesz 0x2000 exceeds p_memsz 0x1000",
    ),
    Case(
        "table-section-not-loaded",
        loose_table,
        FirmwareError,
        "section .resource_table [0x9000, 0x9104) is not inside any PT_LOAD segment",
    ),
    Case("empty-program-name", empty_program_name, FirmwareError, "program name is empty"),
    # -- segments and memory ----------------------------------------------------------------------
    Case(
        "segment-outside-memory",
        lambda: image(segments=((TEXT, b"\0" * 0x100, 0x1000), (0x400000, b"\x11" * 0x100, 0x100))),
        MemoryMapError,
        "segment 2 [0x400000, +0x100) is outside the processor's memory",
    ),
    Case(
        "table-outside-carveouts",
        lambda: image(rsc_addr=0x50000),
        MemoryMapError,
        "segment 1 [0x50000, +0x104) is outside the processor's memory",
    ),
    Case(
        "carveout-too-big",
        lambda: image(
            build_resource_table(
                entries(extra=(Carveout(0x1000_0000, ANY, 64 << 20, name="huge"),))
            )
        ),
        MemoryMapError,
        "huge: cannot allocate 0x4000000 bytes in bad-ddr",
    ),
    Case(
        "carveout-pa-outside-ddr",
        lambda: image(
            build_resource_table(
                entries(extra=(Carveout(0x40000, 0x1000_0000, 0x1000, name="fix"),))
            )
        ),
        MemoryMapError,
        "fix: [0x10000000, +0x1000) is outside bad-ddr",
    ),
    Case(
        "carveouts-same-pa",
        lambda: image(
            build_resource_table(
                entries(
                    text=Carveout(TEXT, 0x8000_0000, 0x10000, name="text"),
                    data=Carveout(DATA, 0x8000_0000, 0x10000, name="data"),
                )
            )
        ),
        MemoryMapError,
        "data: physical range at 0x80000000 is already allocated",
    ),
    Case(
        "vring-da-outside-memory",
        lambda: image(
            build_resource_table(
                entries(
                    vdev=Vdev(
                        id=VIRTIO_ID_RPMSG,
                        notifyid=RSC_NOTIFY_ID_ANY,
                        dfeatures=1,
                        vrings=(VringInfo(0x9000_0000, 0x1000, 256, RSC_NOTIFY_ID_ANY), RING),
                    )
                )
            )
        ),
        MemoryMapError,
        "vdev 0 vring 0 at da 0x90000000 (+0x2806) is outside the processor's memory",
    ),
    Case(
        "trace-outside-memory",
        lambda: image(build_resource_table(entries(trace=Trace(0x50000, 0x1000, name="trace0")))),
        MemoryMapError,
        "trace 'trace0' at da 0x50000 (+0x1000) is outside the processor's memory",
    ),
    Case(
        "devmem-not-allowed",
        lambda: image(build_resource_table(entries(extra=(DEVMEM,)))),
        DevmemNotAllowedError,
        "devmem 'regs' [0x4a000000, +0x1000) at da 0x60000000 is outside the platform's allowlist",
        ALLOW,
    ),
    Case(
        "devmem-partly-allowed",
        lambda: image(
            build_resource_table(
                entries(extra=(Devmem(0x6000_0000, 0x48FF_F000, 0x2000, name="edge"),))
            )
        ),
        DevmemNotAllowedError,
        "devmem 'edge' [0x48fff000, +0x2000)",
        ALLOW,
    ),
    Case(
        "rpmsg-vdev-one-vring",
        lambda: image(
            build_resource_table(
                entries(
                    vdev=Vdev(
                        id=VIRTIO_ID_RPMSG, notifyid=RSC_NOTIFY_ID_ANY, dfeatures=1, vrings=(RING,)
                    )
                )
            )
        ),
        ResourceTableError,
        f"resource table offset {VDEV_AT:#x}: rpmsg vdev needs 2 vrings, has 1",
    ),
    # -- the resource table itself ---------------------------------------------------------------
    Case(
        "table-shorter-than-header",
        lambda: image(raw_table(1)),
        ResourceTableError,
        "table is 4 bytes, shorter than its 16-byte header",
    ),
    Case(
        "version-2",
        lambda: image(patched("I", 0, 2)),
        ResourceTableError,
        "resource table offset 0x0: version 2 is not supported (expected 1)",
    ),
    Case(
        "num-too-large",
        lambda: image(patched("I", 4, 1000)),
        ResourceTableError,
        "num 1000: the offset array would end at 0xfb0, past the end of the 260-byte table",
    ),
    Case(
        "header-reserved",
        lambda: image(patched("I", 8, 1)),
        ResourceTableError,
        "header reserved[0] is 0x1, expected 0",
    ),
    Case(
        "offset-out-of-range",
        lambda: image(patched("I", OFFSETS + 4, 0x1000)),
        ResourceTableError,
        "entry 1 offset 0x14: offset 0x1000 is outside the 260-byte table",
    ),
    Case(
        "offset-into-header",
        lambda: image(patched("I", OFFSETS, 8)),
        ResourceTableError,
        "entry 0 offset 0x10: offset 0x8 points into the header/offset array",
    ),
    Case(
        "type-word-past-end",
        lambda: image(patched("I", OFFSETS + 12, len(GOOD_TABLE) - 2)),
        ResourceTableError,
        "entry 3 offset 0x102: type word runs past the end of the table",
    ),
    Case(
        "unknown-type-7",
        lambda: image(patched("I", TRACE_AT, 7)),
        ResourceTableError,
        f"entry 2 offset {TRACE_AT:#x}: unknown resource type 7",
    ),
    Case(
        "type-100-below-vendor-range",
        lambda: image(patched("I", TRACE_AT, 100)),
        ResourceTableError,
        "unknown resource type 100 (Linux types are 0..3, vendor types 128..512)",
    ),
    Case(
        "carveout-reserved",
        lambda: image(patched("I", DATA_AT + 4 + 16, 5)),
        ResourceTableError,
        f"entry 1 offset {DATA_AT + 20:#x}: reserved is 0x5, expected 0",
    ),
    Case(
        "trace-reserved",
        lambda: image(patched("I", TRACE_AT + 4 + 8, 1)),
        ResourceTableError,
        "entry 2 offset 0x9c: reserved is 0x1, expected 0",
    ),
    Case(
        "vdev-reserved",
        lambda: image(patched("B", VDEV_AT + 4 + 22, 1)),
        ResourceTableError,
        "reserved bytes are 0100, expected 0000",
    ),
    Case(
        "name-without-nul",
        lambda: image(patched("32s", TEXT_AT + 4 + 20, NAME32)),
        ResourceTableError,
        "entry 0 offset 0x38: name has no NUL terminator within 32 bytes",
    ),
    Case(
        "zero-length-carveout",
        lambda: image(patched("I", DATA_AT + 4 + 8, 0)),
        ResourceTableError,
        "zero-length carveout",
    ),
    Case(
        "zero-length-trace",
        lambda: image(patched("I", TRACE_AT + 4 + 4, 0)),
        ResourceTableError,
        "zero-length trace",
    ),
    Case(
        "overlapping-carveouts",
        lambda: image(patched("I", DATA_AT + 4, 0x8000)),
        ResourceTableError,
        "carveout da range [0x8000, 0x18000) overlaps carveout entry 0 at [0x0, 0x10000)",
    ),
    Case(
        "carveout-wraps-4g",
        lambda: image(patched("I", DATA_AT + 4, 0xFFFF_F000)),
        ResourceTableError,
        "carveout da range 0xfffff000+0x10000 wraps past 4 GiB",
    ),
    Case(
        "vring-num-3",
        lambda: image(patched("I", VRING0 + 8, 3)),
        ResourceTableError,
        "vring 0: num 3 is not a power of two <= 32768",
    ),
    Case(
        "vring-align-0",
        lambda: image(patched("I", VRING1 + 4, 0)),
        ResourceTableError,
        "vring 1: align 0x0 is not a power of two",
    ),
    Case(
        "duplicate-notify-ids",
        lambda: image(patched("I", VRING1 + 12, 5, table=patched("I", VRING0 + 12, 5))),
        ResourceTableError,
        "vring 1 notifyid 5 is already used by entry 3 vring 0",
    ),
    Case(
        "entry-runs-past-end",
        lambda: image(raw_table(1, 1, 0, 0, 20, 0, tail=bytes(8))),
        ResourceTableError,
        "carveout entry runs past the end of the table (56 bytes needed from 0x14, 12 remain)",
    ),
    Case(
        "vrings-past-end",
        lambda: image(GOOD_TABLE[: VRING1 + 4]),
        ResourceTableError,
        "num_of_vrings 2 needs 40 bytes of vrings",
    ),
    Case(
        "config-len-past-end",
        lambda: image(patched("I", VDEV_AT + 4 + 16, 100)),
        ResourceTableError,
        "config_len 100 runs past the end of the table (0 bytes remain)",
    ),
    # -- nothing to run ---------------------------------------------------------------------------
    Case(
        "unregistered-program",
        lambda: image(program="no-such-firmware"),
        BootError,
        "names firmware program 'no-such-firmware', which is not registered",
    ),
    Case(
        "unregistered-program-with-devmem",
        lambda: image(build_resource_table(entries(extra=(DEVMEM,))), program="no-such-firmware"),
        BootError,
        "'no-such-firmware'",
        {"devmem_allowlist": ((0x4A00_0000, 0x1000),)},
    ),
    Case(
        "no-program-section",
        lambda: image(program=None),
        BootError,
        "the image has no .aioamp.program section",
    ),
    Case("no-firmware", lambda: None, BootError, "bad: no firmware configured"),
    Case("missing-file", lambda: "/nonexistent/aioamp/fw.elf", FileNotFoundError, "fw.elf"),
]


def test_cases_are_distinct() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
    assert len({case.match for case in CASES}) == len(CASES)


def test_good_image_boots() -> None:
    """The baseline every case corrupts is valid (so each case fails for its own reason)."""
    from remoteproc.firmware import load_firmware
    from remoteproc.rsc_table import parse_resource_table

    fw = load_firmware(image())
    assert fw.program == PROGRAM
    assert fw.resource_table is not None
    assert parse_resource_table(fw.resource_table.data).carveouts[0].name == "text"
    assert (TEXT_AT, DATA_AT, TRACE_AT, VDEV_AT) == (32, 88, 144, 192)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_malformed_boot_leaves_nothing_behind(case: Case) -> None:
    sim = SimPlatform("bad", **case.platform)
    async with RemoteprocManager() as mgr:
        firmware = case.firmware()
        rp = mgr.add(sim, firmware=firmware)
        await anyio.sleep(0)
        before = running_tasks()
        async with rp.transitions() as stream:
            with pytest.raises(case.error) as info:
                await rp.boot()
            assert case.match in str(info.value), str(info.value)
            await anyio.sleep(0.01)  # let anything that was spawned run (or show up)
            assert isinstance(stream, MemoryObjectReceiveStream)
            with pytest.raises(anyio.WouldBlock):
                stream.receive_nowait()  # no transition was published
        assert running_tasks() == before
        assert rp.state_name == "offline"
        assert rp.power == 0
        assert sim.starts == 0
        assert not sim.running
        assert sim.physical.in_use == 0
        assert sim.iommu == {}
        assert rp.loaded is None
        assert rp.buses == []
        assert list(rp.history) == []
        stats = rp.statistics().lifecycle
        assert stats.boot_failures == 1
        assert stats.last_failure is not None and case.match in stats.last_failure

        # The processor is not wedged: a good image boots on the same platform afterwards.
        rp.firmware = build_sample_image("rpmsg-echo")
        await rp.boot()
        assert rp.state_name == "running"
        await rp.shutdown()
        assert sim.physical.in_use == 0
        assert sim.iommu == {}


@pytest.mark.parametrize(
    ("case_id", "builtin"),
    [
        ("not-elf", ValueError),
        ("version-2", ValueError),
        ("carveout-too-big", ValueError),
        ("devmem-not-allowed", PermissionError),
        ("unregistered-program", RuntimeError),
    ],
)
async def test_errors_are_also_builtins(case_id: str, builtin: type[BaseException]) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("bad", **case.platform), firmware=case.firmware())
        with pytest.raises(builtin):
            await rp.boot()


async def test_resource_table_error_names_entry_and_offset() -> None:
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("bad"), firmware=image(patched("I", VRING0 + 8, 3)))
        with pytest.raises(ResourceTableError) as info:
            await rp.boot()
    assert info.value.index == 3
    assert info.value.offset == VRING0 + 8
    assert info.value.reason == "vring 0: num 3 is not a power of two <= 32768"


async def test_failed_dependent_boot_shuts_its_dependency_down() -> None:
    """A malformed image on a dependent undoes the boot of the processor it depends on."""
    async with RemoteprocManager() as mgr:
        base_sim = SimPlatform("base")
        base = mgr.add(base_sim, firmware=build_sample_image("rpmsg-echo"))
        top = mgr.add(SimPlatform("top"), firmware=image(patched("I", 0, 2)), depends_on=[base])
        with pytest.raises(ResourceTableError, match="version 2"):
            await top.boot()
        assert (base.state_name, base.power) == ("offline", 0)
        assert (base_sim.starts, base_sim.stops) == (1, 1)
        assert base_sim.physical.in_use == 0
