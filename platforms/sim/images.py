"""Firmware images for the simulator, built with our ELF writer and resource-table codec.

The sample layout, as a small Cortex-M firmware would link it: code at device address 0 (a
0x8000-byte segment, entry 0x1000) in a 64 KiB ``text`` carveout that also holds the resource
table's own segment at 0x8000; a 64 KiB ``data`` carveout at 0x20000 whose first 4 KiB are the
trace buffer and whose data segment starts at 0x21000; one rpmsg vdev whose two 256-entry
vrings the host places (``da`` = FW_RSC_ADDR_ANY) and numbers (notify ids ANY).
"""

from __future__ import annotations

from platforms.runtime import check_program_name
from remoteproc.elfwriter import build_firmware
from remoteproc.rsc_table import (
    FW_RSC_ADDR_ANY,
    RSC_NOTIFY_ID_ANY,
    Carveout,
    Entry,
    Trace,
    Vdev,
    build_resource_table,
)
from transports.virtio.constants import VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F_NS
from transports.virtio.vdev import VringInfo

TEXT_DA = 0x0
TEXT_LEN = 0x10000
DATA_DA = 0x20000
DATA_LEN = 0x10000
TRACE_DA = 0x20000
TRACE_LEN = 0x1000
RSC_TABLE_DA = 0x8000
ENTRY = 0x1000
DATA_SEGMENT_DA = DATA_DA + TRACE_LEN


def sample_resource_entries(*, num: int = 256, trace: bool = True) -> list[Entry]:
    """The sample table: two carveouts, a trace buffer and one rpmsg vdev."""
    entries: list[Entry] = [
        Carveout(da=TEXT_DA, pa=FW_RSC_ADDR_ANY, len=TEXT_LEN, name="text"),
        Carveout(da=DATA_DA, pa=FW_RSC_ADDR_ANY, len=DATA_LEN, name="data"),
    ]
    if trace:
        entries.append(Trace(da=TRACE_DA, len=TRACE_LEN, name="trace0"))
    ring = VringInfo(da=FW_RSC_ADDR_ANY, align=0x1000, num=num, notifyid=RSC_NOTIFY_ID_ANY)
    entries.append(
        Vdev(
            id=VIRTIO_ID_RPMSG,
            notifyid=RSC_NOTIFY_ID_ANY,
            dfeatures=1 << VIRTIO_RPMSG_F_NS,
            vrings=(ring, ring),
        )
    )
    return entries


def build_sample_image(
    program: str = "rpmsg-client-sample",
    *,
    entries: list[Entry] | None = None,
    code: bytes | None = None,
) -> bytes:
    """A bootable 32-bit ARM ELF for the simulator running ``program``.

    Raises:
        ProgramNameError: ``program`` breaks :func:`~platforms.runtime.programs.check_program_name`
            (checked first: no image is built that the registry or the parser would refuse).
    """
    check_program_name(program)
    table = build_resource_table(entries if entries is not None else sample_resource_entries())
    text = code if code is not None else bytes(0x2000)
    data = b"aioamp sample data\0".ljust(0x100, b"\0")
    return build_firmware(
        ENTRY,
        [(TEXT_DA, text, RSC_TABLE_DA - TEXT_DA), (DATA_SEGMENT_DA, data, 0x1000)],
        resource_table=table,
        rsc_addr=RSC_TABLE_DA,
        program=program,
    )
