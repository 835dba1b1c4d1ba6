"""What unicorn calls while the core runs: lazy mapping, device accesses, exception returns.

Theory of operation: these run on the core's thread inside ``emu_start``. An unmapped access
asks the board what is there (:meth:`CoreHooks._resolve`): a window is mapped and the access
retried, or the access faults. Device accesses (one callback per aligned 32-bit access) are
made under the board's bus lock. A stop request that is already pending when one begins
means unicorn will restart the instruction after the callback, so the access is not made now
(it is made when the instruction runs again). When an access the core makes itself makes an
exception pending (a software pend, an enable, a line its write raised), the access is made,
the emulation stopped so the exception is taken before the next instruction, and the access
remembered (:class:`~platforms.emu.base.Replay`): when the interrupted instruction runs
again, its access is not made twice. A faulting access is not made at all. Exception returns
and SVCs arrive as unicorn interrupts: returns are handled in place (the frame is popped, or
the next exception tail-chained), SVCs stop the run so the loop takes them.
"""

from __future__ import annotations

from collections.abc import Callable

from unicorn import UC_HOOK_CODE, UC_MEM_FETCH_UNMAPPED, UC_MEM_WRITE_UNMAPPED, Uc

from . import regs as R
from .base import CoreBase
from .exceptions import EXC_RETURN_MIN
from .faults import FaultKind
from .memory import Stall, Window
from .nvic import HARDFAULT, USAGEFAULT
from .scs import CFSR_INVPC, HFSR_DEBUGEVT, SCS_BASE

_INTR_SWI, _INTR_BKPT = 2, 7
_WFE = b"\x20\xbf"


class CoreHooks(CoreBase):
    """The unicorn callbacks of :class:`~platforms.emu.core.CortexM`."""

    # -- memory ----------------------------------------------------------------------------------
    def _resolve(self, da: int) -> bool:
        with self.bus.lock:
            if not self._alive:
                return False
            try:
                window = self.bus.resolve(da & ~0xFFF)
            except Stall as stall:
                self._stall = stall
                return False
            if window is None:
                return False
            self.amap.map_window(window, self._mmio_read, self._mmio_write)
            self.stats.windows += 1
            return True

    def _access(self, write: bool, address: int, value: int, perform: Callable[[], int]) -> int:
        """One register access (the bus lock is held); see the module docstring."""
        if self._stop_flag or self._stop_pending or not self._alive:
            # Stop before the access rather than after it: unicorn restarts the instruction
            # (also when the ticker's stop was lost), and the access is made then.
            self.uc.emu_stop()
            return 0
        replay = self._replays.pop(tuple(self.state.active), None) if self._replays else None
        if replay is not None:
            # Back in the context where the core was stopped: the first access here is the
            # restarted instruction's.
            same = replay.write == write and replay.address == address
            if same and (not write or replay.value == value):
                return replay.value  # already made before the stop: not again
        self._io_busy = True
        self._io_seq += 1
        self.stats.mmio += 1
        try:
            result = perform()
        finally:
            self._io_busy = False
        if self._stop_pending:
            # This access made an exception pending (an enable, a software pend, a raised
            # line): take it before the next instruction. The stop makes unicorn restart this
            # instruction afterwards; _replay then keeps the access from being made twice.
            self._replay_next = (write, address, value if write else result)
            self.uc.emu_stop()
        return result

    def _mmio_read(self, uc: Uc, offset: int, size: int, where: object) -> int:
        return self._register(False, where, offset, size, 0)

    def _mmio_write(self, uc: Uc, offset: int, size: int, value: int, where: object) -> None:
        self._register(True, where, offset, size, value)

    def _register(self, write: bool, where: object, offset: int, size: int, value: int) -> int:
        """A register window's access (``where``: see :func:`_where`); a device that refuses
        it, or a size other than an aligned word, is a precise bus fault."""
        window, base = _where(where)
        off = base + offset
        address = window.da + off
        access = "write" if write else "read"
        with self.bus.lock:
            if size != 4 or off & 3:
                self._device_error(access, address, f"{size}-byte register access")
                return 0
            device = window.device
            assert device is not None

            def perform() -> int:
                if write:
                    device.write32(off, value & 0xFFFF_FFFF)
                    return 0
                return int(device.read32(off)) & 0xFFFF_FFFF

            try:
                return self._access(write, address, value, perform)
            except Exception as exc:
                self._device_error(access, address, str(exc))
                return 0

    def _device_error(self, access: str, address: int, detail: str) -> None:
        self._bus_fault = (access, address, detail)
        self.uc.emu_stop()  # precise: the instruction faults, its access is not made

    def _scs_read(self, uc: Uc, offset: int, size: int, ud: object) -> int:
        def perform() -> int:
            with self._cv:
                return self.scs.read(offset, size)

        with self.bus.lock:
            return self._access(False, SCS_BASE + offset, 0, perform)

    def _scs_write(self, uc: Uc, offset: int, size: int, value: int, ud: object) -> None:
        def perform() -> int:
            with self._cv:
                self.scs.write(offset, size, value)
            return 0

        with self.bus.lock:
            self._access(True, SCS_BASE + offset, value, perform)

    # -- unicorn hooks ---------------------------------------------------------------------------
    def _unmapped_hook(
        self, uc: Uc, access: int, address: int, size: int, value: int, ud: object
    ) -> bool:
        if self._resolve(address):
            return True
        kind = "fetch" if access == UC_MEM_FETCH_UNMAPPED else "read"
        kind = "write" if access == UC_MEM_WRITE_UNMAPPED else kind
        if self._stall is not None:
            self._stall.access = kind
        self._bus_fault = (kind, address, "nothing there")
        return False

    def _invalid_hook(self, uc: Uc, ud: object) -> bool:
        """WFE is a hint here (carry on after it); anything else is undefined."""
        pc = int(uc.reg_read(R.PC))
        host = self.amap.host(pc - 2, 2)
        return host is not None and bytes(host) == _WFE

    def _intr_hook(self, uc: Uc, intno: int, ud: object) -> None:
        pc = int(uc.reg_read(R.PC))
        if pc >= EXC_RETURN_MIN:
            self._exception_return(pc | 1)
        elif intno == _INTR_SWI:
            # Entering from here does not stick for an SVC (unicorn executes the SVC again):
            # stop with PC past the SVC and let the loop take it.
            self._svc_pending = True
            uc.emu_stop()
        elif intno == _INTR_BKPT:
            self._hook_fault(FaultKind.BREAKPOINT, pc, HARDFAULT, 0, HFSR_DEBUGEVT)
        else:
            self._stall = Stall(pc, "exec", f"unexpected unicorn interrupt {intno}")
            uc.emu_stop()

    def _exception_return(self, exc_return: int) -> None:
        try:
            with self._cv:
                target = self.engine.leave(exc_return)
                self._masked_pending = self.engine.masked_only()
        except ValueError as exc:
            pc = self._pc()
            self._hook_fault(FaultKind.INVALID_STATE, pc, USAGEFAULT, CFSR_INVPC, detail=str(exc))
            return
        self.pcs.append(target)

    def _hook_fault(
        self,
        kind: FaultKind,
        pc: int,
        fault: int,
        cfsr: int,
        hfsr: int = 1 << 30,
        detail: str = "",
    ) -> None:
        if self._fault(kind, pc, fault, cfsr, detail=detail, hfsr=hfsr) is None:
            self.uc.emu_stop()  # lockup: the loop sees the core halted

    def _unmasked_hook(self, uc: Uc, address: int, size: int, ud: object) -> None:
        """Runs before the instruction after one that lowers a mask."""
        with self._cv:
            if self.engine.next_exception() is not None:
                uc.emu_stop()  # stops before this instruction: the exception comes first

    def _block_hook(self, uc: Uc, address: int, size: int, ud: object) -> None:
        self.pcs.append(address)

    def _watch_unmasking(self, da: int) -> None:
        """Hook the instruction after every ``cpsie`` and every ``msr`` to PRIMASK, BASEPRI or
        FAULTMASK in the RAM window at ``da`` (the code the core boots from). Hooks added
        before the code is first translated cost nothing elsewhere; an unmask instruction
        this misses (code loaded later) is caught by the ticker's periodic check instead."""
        found = self.amap.window_bytes(da)
        if found is None:
            return
        base, code = found
        for offset in _unmask_sites(code):
            site = base + offset
            self.uc.hook_add(UC_HOOK_CODE, self._unmasked_hook, begin=site, end=site)
            self.unmask_sites.append(site)


def _unmask_sites(code: bytes) -> list[int]:
    """Offsets of the instructions after CPSIE (16-bit) and MSR to a mask register (32-bit,
    ``F38n 881x``), at halfword alignment."""
    sites = []
    for pattern in (b"\x61\xb6", b"\x62\xb6", b"\x63\xb6"):  # cpsie f / i / if
        at = code.find(pattern)
        while at >= 0:
            if at % 2 == 0:
                sites.append(at + 2)
            at = code.find(pattern, at + 1)
    for sysm in (0x10, 0x11, 0x12, 0x13):  # PRIMASK, BASEPRI, BASEPRI_MAX, FAULTMASK
        pattern = bytes((sysm, 0x88))
        at = code.find(pattern, 2)
        while at >= 2:
            first = int.from_bytes(code[at - 2 : at], "little")
            if at % 2 == 0 and first & 0xFFF0 == 0xF380:
                sites.append(at + 2)
            at = code.find(pattern, at + 1)
    return sorted(set(sites))


def _where(where: object) -> tuple[Window, int]:
    """The ``(window, base offset)`` user data of an MMIO callback (memory.AddressMap)."""
    assert isinstance(where, tuple)
    window, base = where
    assert isinstance(window, Window) and isinstance(base, int)
    return window, base
