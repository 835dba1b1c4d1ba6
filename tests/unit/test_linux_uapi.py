"""The rpmsg char device ABI (platforms.linux.uapi): ioctl numbers and the endpoint info struct,
checked against the C header itself where a compiler and the header are at hand."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import pytest

from platforms.linux.uapi import (
    ADDR_ANY,
    ENDPOINT_INFO,
    GENERIC,
    PPC_MIPS,
    encoding_for,
    flow_control_supported,
    ioctl_numbers,
    pack_endpoint_info,
    unpack_endpoint_info,
)

ROOT = Path(__file__).resolve().parents[2]
#: Linux 6.12's header, extracted by `make kernel` (the system's may predate flow control).
KERNEL_HEADER = ROOT / "build" / "uml" / "src" / "include" / "uapi" / "linux" / "rpmsg.h"
_PROGRAM = r"""
#include <stdio.h>
int main(void) {
    printf("%#x %#x %#x %#x %#x %#x %zu\n", RPMSG_CREATE_EPT_IOCTL, RPMSG_DESTROY_EPT_IOCTL,
           RPMSG_CREATE_DEV_IOCTL, RPMSG_RELEASE_DEV_IOCTL, RPMSG_GET_OUTGOING_FLOWCONTROL,
           RPMSG_SET_INCOMING_FLOWCONTROL, sizeof(struct rpmsg_endpoint_info));
    return 0;
}
"""


def test_x86_64_numbers_are_those_the_header_defines() -> None:
    n = ioctl_numbers("x86_64")
    assert (n.create_ept, n.destroy_ept, n.create_dev, n.release_dev) == (
        0x4028B501,
        0xB502,
        0x4028B503,
        0x4028B504,
    )
    assert (n.get_outgoing_flowcontrol, n.set_incoming_flowcontrol) == (0x8004B505, 0x8004B506)
    assert ENDPOINT_INFO.size == 40


@pytest.mark.skipif(
    shutil.which("cc") is None or not KERNEL_HEADER.is_file(),
    reason="needs a C compiler and the kernel tree of `make kernel`",
)
def test_numbers_match_the_compiled_header(tmp_path: Path) -> None:
    source = tmp_path / "n.c"
    source.write_text(_PROGRAM)
    binary = tmp_path / "n"
    subprocess.run(
        ["cc", "-include", str(KERNEL_HEADER), "-o", str(binary), str(source)], check=True
    )
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    *numbers, size = out.split()
    n = ioctl_numbers("x86_64")
    ours = [
        n.create_ept,
        n.destroy_ept,
        n.create_dev,
        n.release_dev,
        n.get_outgoing_flowcontrol,
        n.set_incoming_flowcontrol,
    ]
    assert [int(x, 16) for x in numbers] == ours
    assert int(size) == ENDPOINT_INFO.size


@pytest.mark.parametrize(
    ("machine", "encoding"),
    [
        ("x86_64", GENERIC),
        ("aarch64", GENERIC),
        ("armv7l", GENERIC),
        ("riscv64", GENERIC),
        ("ppc64le", PPC_MIPS),
        ("mips", PPC_MIPS),
        ("sparc64", PPC_MIPS),
    ],
)
def test_the_encoding_follows_the_architecture(machine: str, encoding: object) -> None:
    assert encoding_for(machine) is encoding


def test_powerpc_numbers_use_its_own_direction_bits() -> None:
    # arch/powerpc/include/uapi/asm/ioctl.h: _IOC_WRITE 4, _IOC_READ 2, _IOC_NONE 1, 13 bits.
    n = ioctl_numbers("ppc64le")
    assert n.create_ept == 4 << 29 | 40 << 16 | 0xB5 << 8 | 1
    assert n.destroy_ept == 1 << 29 | 0xB5 << 8 | 2
    assert n.get_outgoing_flowcontrol == 2 << 29 | 4 << 16 | 0xB5 << 8 | 5


def test_endpoint_info_round_trips() -> None:
    raw = pack_endpoint_info("rpmsg-raw", 1024, ADDR_ANY)
    assert len(raw) == 40 and raw[:10] == b"rpmsg-raw\0"
    assert unpack_endpoint_info(raw) == ("rpmsg-raw", 1024, ADDR_ANY)


@pytest.mark.parametrize("name", ["", "x" * 32, "caf\u00e9", "a\0b"])
def test_a_name_the_struct_cannot_carry_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"1\.\.31 ASCII"):
        pack_endpoint_info(name, 1, 2)


def test_an_address_outside_32_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="dst address"):
        pack_endpoint_info("x", 1, 1 << 32)


@pytest.mark.parametrize(
    ("err", "supported"),
    [
        (errno.ENOTTY, False),  # no such ioctl
        (errno.EINVAL, False),  # rpmsg_char before flow control: every unknown command
        (errno.EOPNOTSUPP, False),  # the backend (virtio_rpmsg_bus) lacks set_flow_control
        (errno.EPIPE, True),  # a real failure: the endpoint is gone
        (errno.EFAULT, True),
    ],
)
def test_flow_control_support_is_read_from_the_errno(err: int, supported: bool) -> None:
    assert flow_control_supported(err) is supported
