"""ARMv7-M exception entry and return done by hand on a unicorn core.

Theory of operation: unicorn executes Thumb-2 but has no NVIC and does not take or return
from exceptions on an M-profile core. Entry (ARMv7-M ARM B1.5.6) pushes the 8-word frame
(r0-r3, r12, lr, return address, xPSR) on the current stack, 8-byte aligned (xPSR bit 9 in
the frame says a pad word was added), selects the main stack (CONTROL.SPSEL = 0), puts
EXC_RETURN in lr (0xFFFFFFF1 back to a handler, 0xFFFFFFF9 to thread mode on the main stack,
0xFFFFFFFD on the process stack), sets IPSR and jumps to the vector. Writing IPSR does not
refresh the mode unicorn caches, so NZCV is written back after it.

Return (B1.5.8) shows up as an interrupt hook when a handler branches to EXC_RETURN: the frame
is popped from the stack EXC_RETURN names, the pad word skipped, xPSR (with the interrupted
IPSR) and the stack selection restored. If another exception can run at the priority being
returned to, it is *tail-chained*: the frame stays and the next handler starts at once.

Registers go through :class:`~platforms.emu.regs.RegisterBatch` (one ctypes call per side);
the frame is written straight into the host bytes behind the stack when they are mapped RAM.
"""

from __future__ import annotations

import struct

from unicorn import Uc, UcError

from . import regs as R
from .memory import AddressMap
from .nvic import ExceptionState
from .scs import Scs

_FRAME = struct.Struct("<8I")
EXC_RETURN_HANDLER = 0xFFFF_FFF1
EXC_RETURN_THREAD_MSP = 0xFFFF_FFF9
EXC_RETURN_THREAD_PSP = 0xFFFF_FFFD
EXC_RETURN_MIN = 0xFFFF_FFE0
XPSR_ALIGN = 1 << 9
XPSR_THUMB = 1 << 24


class StackingError(Exception):
    """The frame could not be pushed or popped (the stack points at no memory)."""

    def __init__(self, sp: int) -> None:
        super().__init__(f"no memory for the exception frame at sp {sp:#010x}")
        self.sp = sp


class ExceptionEngine:
    """Entry and return for one core (the caller holds the core's lock)."""

    def __init__(self, uc: Uc, state: ExceptionState, scs: Scs, amap: AddressMap) -> None:
        self.uc = uc
        self.state = state
        self.scs = scs
        self.amap = amap
        self._context = R.RegisterBatch(
            uc,
            (R.R0, R.R1, R.R2, R.R3, R.R12, R.LR, R.PC, R.XPSR, R.SP, R.CONTROL),
        )
        self._masks = R.RegisterBatch(uc, (R.PRIMASK, R.FAULTMASK, R.BASEPRI))
        self._stacks = R.RegisterBatch(uc, (R.MSP, R.PSP, R.CONTROL))
        self._enter = R.RegisterBatch(uc, (R.SP, R.CONTROL, R.LR, R.IPSR, R.NZCV, R.PC))
        self._tail = R.RegisterBatch(uc, (R.LR, R.IPSR, R.NZCV, R.PC))
        restore = (R.R0, R.R1, R.R2, R.R3, R.R12, R.LR)
        self._return_msp = R.RegisterBatch(uc, (*restore, R.MSP, R.CONTROL, R.XPSR, R.NZCV, R.PC))
        # Back to the process stack: thread mode first (on the main stack), then the process
        # stack pointer, then CONTROL.SPSEL, whose write in thread mode switches SP over.
        self._return_psp = R.RegisterBatch(uc, (*restore, R.XPSR, R.NZCV, R.PSP, R.CONTROL, R.PC))
        self.entries = 0
        self.returns = 0
        self.tail_chains = 0

    # -- priorities ------------------------------------------------------------------------------
    def execution_priority(self) -> int:
        primask, faultmask, basepri = self._masks.read()
        return self.state.execution_priority(bool(primask & 1), bool(faultmask & 1), basepri)

    def masked_only(self) -> bool:
        """A pending exception waits only for PRIMASK / FAULTMASK / BASEPRI to be lowered."""
        st = self.state
        unmasked = st.execution_priority(False, False, 0)
        return st.next_exception(unmasked) is not None and self.next_exception() is None

    def next_exception(self) -> int | None:
        return self.state.next_exception(self.execution_priority())

    # -- memory ----------------------------------------------------------------------------------
    def vector(self, n: int) -> int:
        addr = self.scs.vtor + 4 * n
        host = self.amap.host(addr, 4)
        if host is not None:
            return int.from_bytes(host, "little")
        return int.from_bytes(self.uc.mem_read(addr, 4), "little")

    def _push(self, sp: int, words: tuple[int, ...]) -> None:
        host = self.amap.host(sp, 32)
        if host is not None:
            _FRAME.pack_into(host, 0, *words)
            return
        try:
            self.uc.mem_write(sp, _FRAME.pack(*words))
        except UcError:
            raise StackingError(sp) from None

    def _pop(self, sp: int) -> tuple[int, ...]:
        host = self.amap.host(sp, 32)
        if host is not None:
            return _FRAME.unpack_from(host)
        try:
            return _FRAME.unpack(self.uc.mem_read(sp, 32))
        except UcError:
            raise StackingError(sp) from None

    # -- entry -----------------------------------------------------------------------------------
    def enter(self, n: int, return_address: int | None = None) -> int:
        """Take exception ``n`` now; the frame's return address is the current PC unless
        ``return_address`` is given (a fault's own instruction). Returns the handler's PC."""
        r0, r1, r2, r3, r12, lr, pc, xpsr, sp, control, *_ = self._context.read()
        if return_address is not None:
            pc = return_address
        frame_sp = sp - 32
        pad = frame_sp & 4 if self.scs.ccr & (1 << 9) else 0
        frame_sp -= pad
        stacked_xpsr = (xpsr & ~XPSR_ALIGN) | (XPSR_ALIGN if pad else 0)
        self._push(frame_sp, (r0, r1, r2, r3, r12, lr, pc & ~1, stacked_xpsr))
        if self.state.current:
            exc_return = EXC_RETURN_HANDLER
        elif control & 2:
            exc_return = EXC_RETURN_THREAD_PSP
        else:
            exc_return = EXC_RETURN_THREAD_MSP
        handler = self.vector(n) & ~1
        self.state.enter(n)
        self._enter.write((frame_sp, control & ~2, exc_return, n, xpsr & 0xF000_0000, handler | 1))
        self.entries += 1
        return handler

    # -- return ----------------------------------------------------------------------------------
    def leave(self, exc_return: int) -> int:
        """The handler branched to ``exc_return``: return (or tail-chain); returns the PC
        execution continues at. Raises ValueError for an EXC_RETURN that is not one."""
        if exc_return not in (EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP):
            raise ValueError(f"invalid EXC_RETURN {exc_return:#010x}")
        if not self.state.active:
            raise ValueError(f"EXC_RETURN {exc_return:#010x} in thread mode")
        self.state.leave()
        self.returns += 1
        nxt = self.next_exception()
        if nxt is not None:  # tail-chain: the frame stays where it is
            handler = self.vector(nxt) & ~1
            self.state.enter(nxt)
            flags = int(self.uc.reg_read(R.NZCV))
            self._tail.write((exc_return, nxt, flags, handler | 1))
            self.tail_chains += 1
            return handler
        msp, psp, control = self._stacks.read()
        use_psp = bool(exc_return & 4)
        frame_sp = psp if use_psp else msp
        r0, r1, r2, r3, r12, lr, pc, xpsr = self._pop(frame_sp)
        new_sp = frame_sp + 32 + (4 if xpsr & XPSR_ALIGN else 0)
        control = control | 2 if use_psp else control & ~2
        xpsr = (xpsr & ~XPSR_ALIGN) | XPSR_THUMB
        flags = xpsr & 0xF000_0000
        if use_psp:
            self._return_psp.write((r0, r1, r2, r3, r12, lr, xpsr, flags, new_sp, control, pc | 1))
        else:
            self._return_msp.write((r0, r1, r2, r3, r12, lr, new_sp, control, xpsr, flags, pc | 1))
        return pc
