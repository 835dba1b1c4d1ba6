"""Firmware images for the modelled IPU/DSP: the sim sample, linked at the IPC window.

The DSP image (:func:`build_dsp_image`) has the same layout at the DSP's own text address
(:data:`~platforms.pandaboard.config.DSP_DA`) and is a TI C6000 ELF; its entry point (code at
+0x1000) satisfies the 1 KiB alignment CONTROL_DSP_BOOTADDR requires.

Layout, as TI's 2012 IPU firmware places it: a 64 KiB ``text`` carveout at device address
0xA0000000 (code at +0x1000, resource table at +0x8000) and a 64 KiB ``data`` carveout right
after it (trace buffer in its first 4 KiB); with first-fit allocation from the IPC window the
two land at physical 0xA9000000 as one contiguous run (two 64 KiB TLB entries). Vrings and the
buffer pool are placed by the host (da = pa, identity-mapped). ``devmem`` adds DEVMEM entries.
"""

from __future__ import annotations

from remoteproc.elfwriter import EM_ARM, build_firmware
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
from transports.virtio.constants import VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F_NS
from transports.virtio.vdev import VringInfo

from .config import DSP_DA, IPC_DA

TEXT_LEN = 0x10000
DATA_LEN = 0x10000
TRACE_LEN = 0x1000
#: ``e_machine`` of a TI C6000 (the Tesla DSP's C64x) ELF (gABI ``EM_TI_C6000``).
EM_TI_C6000 = 140


def ipu_entries(
    base_da: int = IPC_DA, *, num: int = 256, devmem: tuple[Devmem, ...] = ()
) -> list[Entry]:
    """Text + data carveouts at ``base_da``, a trace buffer, DEVMEMs, one rpmsg vdev."""
    ring = VringInfo(da=FW_RSC_ADDR_ANY, align=0x1000, num=num, notifyid=RSC_NOTIFY_ID_ANY)
    return [
        Carveout(da=base_da, pa=FW_RSC_ADDR_ANY, len=TEXT_LEN, name="text"),
        Carveout(da=base_da + TEXT_LEN, pa=FW_RSC_ADDR_ANY, len=DATA_LEN, name="data"),
        Trace(da=base_da + TEXT_LEN, len=TRACE_LEN, name="trace0"),
        *devmem,
        Vdev(
            id=VIRTIO_ID_RPMSG,
            notifyid=RSC_NOTIFY_ID_ANY,
            dfeatures=1 << VIRTIO_RPMSG_F_NS,
            vrings=(ring, ring),
        ),
    ]


def dsp_entries(
    base_da: int = DSP_DA, *, num: int = 256, devmem: tuple[Devmem, ...] = ()
) -> list[Entry]:
    """The DSP's resource table: the IPU layout at the DSP text address."""
    return ipu_entries(base_da, num=num, devmem=devmem)


def build_ipu_image(
    program: str = "rpmsg-client-sample",
    *,
    base_da: int = IPC_DA,
    entries: list[Entry] | None = None,
    machine: int = EM_ARM,
) -> bytes:
    """An ELF for the modelled core running ``program`` (see the module docstring)."""
    table = build_resource_table(entries if entries is not None else ipu_entries(base_da))
    data = b"aioamp pandaboard sample\0".ljust(0x100, b"\0")
    return build_firmware(
        base_da + 0x1000,
        [(base_da, bytes(0x2000), 0x8000), (base_da + TEXT_LEN + TRACE_LEN, data, 0x1000)],
        resource_table=table,
        rsc_addr=base_da + 0x8000,
        program=program,
        machine=machine,
    )


def build_dsp_image(
    program: str = "rpmsg-client-sample",
    *,
    base_da: int = DSP_DA,
    entries: list[Entry] | None = None,
) -> bytes:
    """A C6000 ELF for the modelled DSP running ``program``, linked at ``base_da``."""
    return build_ipu_image(
        program,
        base_da=base_da,
        entries=entries if entries is not None else dsp_entries(base_da),
        machine=EM_TI_C6000,
    )
