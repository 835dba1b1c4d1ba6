"""A finished boot of the UML kernel, and what its console says about it.

Theory of operation: the console is the only report a UML guest gives. The init script prints a
marker line with the guest command's exit status; the kernel reports its own bugs as ``BUG:``
and ``WARNING:`` lines, oopses, panics and call traces, which :func:`kernel_faults` picks out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Self

import attrs

from .errors import GuestCommandError
from .guest import STATUS_MARKER

#: Kernel warnings every boot of this configuration prints, not faults: UML_PCI_OVER_VIRTIO is on
#: only for HAS_DMA, so um_pci_init warns that no PCI device id is configured.
EXPECTED_WARNINGS = ("arch/um/drivers/virt-pci.c",)
_FAULT = re.compile(
    r"BUG:|WARNING:|Kernel panic|Oops|general protection|scheduling while atomic|Call Trace:"
)
_STATUS = re.compile(re.escape(STATUS_MARKER) + r" (\d+)")


def command_status(lines: Sequence[str]) -> int | None:
    """The guest command's exit status from the init script's marker line, None if there is
    none (the command never finished)."""
    status = None
    for line in lines:
        found = _STATUS.search(line)
        if found is not None:
            status = int(found.group(1))
    return status


def kernel_faults(lines: Sequence[str], expected: Sequence[str] = EXPECTED_WARNINGS) -> list[str]:
    """The console lines that report a kernel bug (BUG, WARNING, Oops, panic, a call trace),
    leaving out the warning blocks (``cut here`` .. ``end trace``) raised at an ``expected``
    source location."""
    faults: list[str] = []
    in_expected = False
    for line in lines:
        if in_expected:
            in_expected = "---[ end trace" not in line
        elif "WARNING:" in line and any(f" at {loc}" in line for loc in expected):
            in_expected = True
        elif _FAULT.search(line):
            faults.append(line)
    return faults


@attrs.frozen
class KernelRun:
    """A finished boot: the console and how it ended."""

    lines: tuple[str, ...]
    #: Exit status of the kernel process (negative: killed by that signal).
    returncode: int
    #: Exit status of the guest command, None if it never finished.
    command_status: int | None
    #: Seconds from starting the kernel to its exit.
    elapsed: float

    @property
    def faults(self) -> list[str]:
        """See :func:`kernel_faults`."""
        return kernel_faults(self.lines)

    def check(self) -> Self:
        """``self`` if the command exited 0 and the kernel reported no fault.

        Raises:
            GuestCommandError: otherwise, with the console's end in the message.
        """
        problem = None
        if self.command_status is None:
            problem = f"the guest command never finished (kernel exit status {self.returncode})"
        elif self.command_status != 0:
            problem = f"the guest command exited with status {self.command_status}"
        elif self.faults:
            problem = f"the kernel reported faults: {self.faults[:5]}"
        if problem is not None:
            tail = "\n".join(self.lines[-40:])
            raise GuestCommandError(f"{problem}; console tail:\n{tail}")
        return self
