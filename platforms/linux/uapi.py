"""The rpmsg char device ABI: ioctl numbers and ``struct rpmsg_endpoint_info``. Pure.

Theory of operation: the numbers are not copied as magic constants; they are computed the way
the C headers compute them, so a reader can check each one against the header it cites:

* ``include/uapi/linux/rpmsg.h`` (Linux 6.12)::

      struct rpmsg_endpoint_info { char name[32]; __u32 src; __u32 dst; };   /* 40 bytes */
      #define RPMSG_CREATE_EPT_IOCTL         _IOW(0xb5, 0x1, struct rpmsg_endpoint_info)
      #define RPMSG_DESTROY_EPT_IOCTL        _IO(0xb5, 0x2)
      #define RPMSG_CREATE_DEV_IOCTL         _IOW(0xb5, 0x3, struct rpmsg_endpoint_info)
      #define RPMSG_RELEASE_DEV_IOCTL        _IOW(0xb5, 0x4, struct rpmsg_endpoint_info)
      #define RPMSG_GET_OUTGOING_FLOWCONTROL _IOR(0xb5, 0x5, int)
      #define RPMSG_SET_INCOMING_FLOWCONTROL _IOR(0xb5, 0x6, int)

* ``include/uapi/asm-generic/ioctl.h``: ``_IOC(dir, type, nr, size) = dir << 30 | size << 16 |
  type << 8 | nr`` with ``_IOC_NONE = 0``, ``_IOC_WRITE = 1``, ``_IOC_READ = 2`` (x86, arm,
  arm64, riscv: every SoC this library targets). powerpc, mips, sparc and alpha use 13 size
  bits and ``NONE = 1, READ = 2, WRITE = 4`` (``arch/*/include/uapi/asm/ioctl.h``):
  :func:`ioctl_numbers` takes the machine name.

The flow-control pair is newer than the rest (Linux 6.7; RPMSG_SET_INCOMING_FLOWCONTROL is
declared ``_IOR`` but the kernel reads its argument as a value, not a pointer:
``drivers/rpmsg/rpmsg_char.c``). Older kernels answer an unknown command with EINVAL
(rpmsg_char's ``default:`` case) or ENOTTY: :func:`flow_control_supported` reads either as
"not there".

The struct is passed to the kernel in the CPU's byte order (an ioctl argument, not a wire
format), hence ``=`` in :data:`ENDPOINT_INFO`.
"""

from __future__ import annotations

import errno
import struct

import attrs

#: struct rpmsg_endpoint_info (include/uapi/linux/rpmsg.h): native byte order, no padding.
ENDPOINT_INFO = struct.Struct("=32sII")
#: RPMSG_ADDR_ANY (include/uapi/linux/rpmsg.h).
ADDR_ANY = 0xFFFFFFFF
#: ``char name[32]``: the kernel forces the last byte to NUL (rpmsg_ctrl.c), so 31 usable.
NAME_SIZE = 32
#: The ioctl type byte of rpmsg (include/uapi/linux/rpmsg.h).
RPMSG_IOC_MAGIC = 0xB5
_INT_SIZE = 4  # sizeof(int) on every Linux ABI

#: Machines whose ioctl encoding is not asm-generic's (arch/*/include/uapi/asm/ioctl.h).
_OTHER_ENCODING = ("ppc", "powerpc", "mips", "sparc", "alpha")


@attrs.frozen
class IoctlEncoding:
    """One architecture's ``_IOC`` layout."""

    none: int
    write: int
    read: int
    size_bits: int

    def ioc(self, direction: int, kind: int, nr: int, size: int) -> int:
        """``_IOC(dir, type, nr, size)``."""
        if not 0 <= size < 1 << self.size_bits:
            raise ValueError(f"ioctl argument size {size} does not fit {self.size_bits} bits")
        return direction << (16 + self.size_bits) | size << 16 | kind << 8 | nr


#: include/uapi/asm-generic/ioctl.h.
GENERIC = IoctlEncoding(none=0, write=1, read=2, size_bits=14)
#: arch/{powerpc,mips,sparc,alpha}/include/uapi/asm/ioctl.h.
PPC_MIPS = IoctlEncoding(none=1, write=4, read=2, size_bits=13)


def encoding_for(machine: str) -> IoctlEncoding:
    """The ioctl encoding of ``uname -m``'s ``machine`` (e.g. ``aarch64``, ``ppc64le``)."""
    return PPC_MIPS if machine.lower().startswith(_OTHER_ENCODING) else GENERIC


@attrs.frozen
class RpmsgIoctls:
    """The six rpmsg ioctl request numbers of one architecture."""

    create_ept: int
    destroy_ept: int
    create_dev: int
    release_dev: int
    get_outgoing_flowcontrol: int
    set_incoming_flowcontrol: int


def ioctl_numbers(machine: str = "x86_64") -> RpmsgIoctls:
    """The rpmsg ioctl numbers as ``include/uapi/linux/rpmsg.h`` defines them for
    ``machine``."""
    enc = encoding_for(machine)
    info = ENDPOINT_INFO.size
    magic = RPMSG_IOC_MAGIC
    return RpmsgIoctls(
        create_ept=enc.ioc(enc.write, magic, 0x1, info),
        destroy_ept=enc.ioc(enc.none, magic, 0x2, 0),
        create_dev=enc.ioc(enc.write, magic, 0x3, info),
        release_dev=enc.ioc(enc.write, magic, 0x4, info),
        get_outgoing_flowcontrol=enc.ioc(enc.read, magic, 0x5, _INT_SIZE),
        set_incoming_flowcontrol=enc.ioc(enc.read, magic, 0x6, _INT_SIZE),
    )


def pack_endpoint_info(name: str, src: int, dst: int) -> bytes:
    """``struct rpmsg_endpoint_info`` for an ioctl: ``name`` is 1..31 ASCII characters (the
    kernel keeps 31 and a NUL), ``src``/``dst`` 32-bit addresses or :data:`ADDR_ANY`.

    Raises:
        ValueError: a name the struct cannot carry, or an address outside 32 bits.
    """
    raw = name.encode("ascii", "strict") if name.isascii() else b""
    if not 0 < len(raw) < NAME_SIZE or b"\0" in raw:
        raise ValueError(f"rpmsg name {name!r} is not 1..{NAME_SIZE - 1} ASCII characters")
    for what, addr in (("src", src), ("dst", dst)):
        if not 0 <= addr <= ADDR_ANY:
            raise ValueError(f"{what} address {addr:#x} is not a 32-bit address")
    return ENDPOINT_INFO.pack(raw, src, dst)


def unpack_endpoint_info(raw: bytes) -> tuple[str, int, int]:
    """``(name, src, dst)`` of a packed ``struct rpmsg_endpoint_info``."""
    name, src, dst = ENDPOINT_INFO.unpack(raw)
    return name.split(b"\0", 1)[0].decode("ascii", "replace"), src, dst


def flow_control_supported(err: int) -> bool:
    """False when a flow-control ioctl failed with ``err`` because the kernel or its rpmsg
    backend lacks it: ENOTTY (no such ioctl), EINVAL (rpmsg_char before 6.7 answers every
    unknown command so), EOPNOTSUPP (rpmsg_set_flow_control: the backend, e.g.
    virtio_rpmsg_bus in 6.12, has no ``set_flow_control``)."""
    return err not in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP)
