"""Local endpoint address allocation.

Theory of operation: addresses are 32-bit. 0..1023 are reserved (53 is the name service) and
bound only on explicit request; dynamic addresses are handed out from 1024 up, lowest free
first, like the kernel's ``idr_alloc(..., RPMSG_RESERVED_ADDRESSES, 0)``. A min-heap of freed
addresses below the high-water mark keeps both allocation and release O(log n). Pure.
"""

from __future__ import annotations

import heapq

from .errors import AddressInUseError, AddressTypeError, InvalidAddressError
from .wire import ADDR_ANY, RESERVED_ADDRESSES

MAX_ADDR = 0xFFFFFFFE  # ADDR_ANY itself is never an endpoint address


def check_address(addr: object, what: str, *, any_ok: bool = False) -> int:
    """``addr`` as a plain int, once checked: an ``int`` (an int subclass such as an IntEnum
    member is accepted and converted; ``bool`` is refused) in ``0..MAX_ADDR``, or ADDR_ANY
    when ``any_ok``. ``what`` names it in the error ("destination", ...).

    Raises:
        AddressTypeError: not an int.
        InvalidAddressError: out of range.
    """
    if type(addr) is not int:
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise AddressTypeError(f"{what} address must be an int, not {type(addr).__name__}")
        addr = int(addr)
    if not 0 <= addr <= MAX_ADDR and not (any_ok and addr == ADDR_ANY):
        allowed = " or ADDR_ANY" if any_ok else ""
        raise InvalidAddressError(f"{what} address {addr:#x} is outside 0..{MAX_ADDR:#x}{allowed}")
    return addr


class AddressAllocator:
    """Tracks which local addresses are bound."""

    __slots__ = ("_bound", "_freed", "_next")

    def __init__(self) -> None:
        self._bound: set[int] = set()
        self._freed: list[int] = []  # heap of released dynamic addresses < _next
        self._next = RESERVED_ADDRESSES

    def __contains__(self, addr: int) -> bool:
        return addr in self._bound

    def __len__(self) -> int:
        return len(self._bound)

    def allocate(self, addr: int = ADDR_ANY) -> int:
        """Bind ``addr``, or the lowest free dynamic address when ``addr`` is ANY.

        Raises:
            AddressInUseError: ``addr`` is already bound.
            AddressTypeError: ``addr`` is not an int.
            InvalidAddressError: ``addr`` is not a 32-bit address, or the space is exhausted.
        """
        addr = check_address(addr, "local", any_ok=True)
        if addr == ADDR_ANY:
            while self._freed:
                candidate = heapq.heappop(self._freed)
                if candidate not in self._bound:
                    self._bound.add(candidate)
                    return candidate
            while self._next in self._bound:
                self._next += 1
            if self._next > MAX_ADDR:
                raise InvalidAddressError("no free rpmsg address left")
            addr = self._next
            self._next += 1
            self._bound.add(addr)
            return addr
        if addr in self._bound:
            raise AddressInUseError(f"address {addr} is already bound")
        self._bound.add(addr)
        return addr

    def release(self, addr: int) -> None:
        """Unbind ``addr`` (unknown addresses are ignored)."""
        if addr in self._bound:
            self._bound.discard(addr)
            if RESERVED_ADDRESSES <= addr < self._next:
                heapq.heappush(self._freed, addr)
