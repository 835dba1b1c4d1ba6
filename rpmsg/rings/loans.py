"""Ring buffers lent to users as memoryviews (zero-copy send and receive), and their return. Pure.

Theory of operation (OpenAMP ``rpmsg_get_tx_payload_buffer`` / ``rpmsg_send_nocopy`` /
``rpmsg_hold_rx_buffer`` / ``rpmsg_release_rx_buffer``): a :class:`Lease` is one shared buffer
out of the ring's hands, lent to a user as a memoryview of its payload area. The buffer may go
back to the ring (reposted, given back, sent) only when no view of it can still be used, since
the peer then writes or reads it again.

How that is enforced without a C extension: the user's view is made through a
:class:`pickle.PickleBuffer` over a private memoryview ``base`` of the buffer, so it (and every
slice of it, which shares its managed buffer) holds one export of ``base``. To end a lease the
user's view is released, then ``base``: if a slice of the view still lives, ``base.release()``
raises ``BufferError``, and the buffer is *quarantined*: kept out of the ring and counted, until
a later :meth:`Loans.sweep` (at the bus's next lend: a borrow, a held receive) finds the slice
gone. Access through a released view raises the
builtin ``ValueError``. A lease of a bus that closed or a device that was reset is made dead
(:meth:`Loans.invalidate`): its views are released where possible and nothing about it is ever
written to the ring again.
"""

from __future__ import annotations

from collections.abc import Callable
from pickle import PickleBuffer

#: Give a buffer back to the ring (repost, give, or keep for reuse): called at most once.
GiveBack = Callable[[], None]


class Lease:
    """One buffer lent out. ``kind`` is ``"tx"`` (borrowed to send) or ``"rx"`` (held).

    ``token`` and ``offset`` are the ring's: which buffer (a host's address, a remote's
    descriptor head) and where its header starts in the pool; ``nbytes`` is the view's size.
    ``dead`` is why the lease ended with its bus (None while the ring can take it back).
    """

    __slots__ = ("base", "dead", "give_back", "kind", "nbytes", "offset", "token", "view")

    def __init__(
        self,
        kind: str,
        mem: memoryview,
        start: int,
        nbytes: int,
        *,
        readonly: bool,
        give_back: GiveBack | None,
        token: int = 0,
    ) -> None:
        base = mem[start : start + nbytes]
        self.base = base.toreadonly() if readonly else base
        exporter = PickleBuffer(self.base)
        self.view = memoryview(exporter)  # holds one export of base, as do its slices
        exporter.release()
        self.kind = kind
        self.nbytes = nbytes
        self.give_back = give_back
        self.token = token
        self.offset = start
        self.dead: str | None = None

    def unlend(self) -> bool:
        """Release the views: True if no view of the buffer is left (a slice still alive:
        False, and ``base`` stays valid for a later try)."""
        try:
            self.view.release()
            self.base.release()
        except BufferError:
            return False
        return True


class Loans:
    """Every buffer a bus lent out, with the counters its statistics report."""

    def __init__(self) -> None:
        self.out: set[Lease] = set()
        self.quarantine: list[Lease] = []
        self.borrowed_total = self.held_total = 0
        #: Held-buffer bound reached: the message was copied instead (see ``max_held``).
        self.hold_fallbacks = 0
        self.quarantined_total = 0
        #: Buffers their endpoint still had out when it closed (returned then).
        self.leaks = 0
        #: The most rx buffers that may be held at once (set by the rings when they start).
        self.max_held = 0
        self.held = 0
        #: The lease of each ring view handed to the receive passes, until an endpoint adopts it.
        self._by_view: dict[int, Lease] = {}

    @property
    def borrowed(self) -> int:
        return len(self.out) - self.held

    def lend(self, lease: Lease) -> memoryview:
        """Track ``lease``; returns its view."""
        self.sweep()
        self.out.add(lease)
        if lease.kind == "rx":
            self.held += 1
            self.held_total += 1
            self._by_view[id(lease.view)] = lease
        else:
            self.borrowed_total += 1
        return lease.view

    def can_hold(self) -> bool:
        return self.held < self.max_held

    def adopt(self, payload: bytes | memoryview) -> Lease:
        """The lease of a received payload: the ring's, or (a copy: the hold bound was
        reached, or the bus copies anyway) a private one that gives nothing back."""
        lease = self._by_view.pop(id(payload), None)
        if lease is not None and lease.view is payload:
            return lease
        return Lease(
            "copy",
            memoryview(payload),
            0,
            memoryview(payload).nbytes,
            readonly=True,
            give_back=None,
        )

    def settle(self, lease: Lease, *, give: bool) -> bool:
        """End ``lease``: release its views, then (``give``) give the buffer back. False: a
        view of it is still alive, so it is quarantined instead, and given back (whatever
        ``give``: a send it stopped did not happen) by a later :meth:`sweep`; nothing goes to
        the ring meanwhile."""
        if lease.kind == "copy":
            lease.unlend()
            return True
        self._forget(lease)
        if not lease.unlend():
            self.quarantine.append(lease)
            self.quarantined_total += 1
            return False
        if give and lease.dead is None and lease.give_back is not None:
            lease.give_back()
        return True

    def _forget(self, lease: Lease) -> None:
        if lease in self.out:
            self.out.discard(lease)
            self._by_view.pop(id(lease.view), None)
            if lease.kind == "rx":
                self.held -= 1

    def sweep(self) -> None:
        """Give back the quarantined buffers whose last view is gone."""
        if not self.quarantine:
            return
        kept = []
        for lease in self.quarantine:
            try:
                lease.base.release()
            except BufferError:
                kept.append(lease)
                continue
            if lease.dead is None and lease.give_back is not None:
                lease.give_back()
        self.quarantine = kept

    def invalidate(self, why: str) -> int:
        """The ring is gone (the bus closed, the host reset the device): every lease dies;
        nothing is given back. Returns how many were out."""
        leases = [*self.out, *self.quarantine]
        for lease in leases:
            lease.dead = why
            lease.unlend()  # a slice that survives keeps its memory; never reused by us
        count = len(self.out)
        self.out.clear()
        self._by_view.clear()
        self.quarantine = []
        self.held = 0
        return count
