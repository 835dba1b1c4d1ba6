"""The table-wide rules of a resource table, checked across its entries (pure).

Decisions (where Linux is silent or lax):

* Entries may not share bytes in the table (write-back into one would corrupt another).
* Device-address ranges: carveouts and devmems must be pairwise disjoint; a trace buffer must be
  disjoint from every other trace and either disjoint from, or wholly inside, one carveout/devmem
  (TI IPC firmware puts its trace buffer inside its data carveout). Entries whose ``da`` is
  ``FW_RSC_ADDR_ANY`` are placed later and skipped. A range may not wrap past 4 GiB.
* Notify ids (the VDEV ``notifyid`` and every vring ``notifyid``) share one namespace and must be
  unique across the table, except ``RSC_NOTIFY_ID_ANY`` (0xFFFFFFFF, "host assigns"), which
  may repeat.
"""

from __future__ import annotations

import attrs

from ..errors import ResourceTableError
from .entries import FW_RSC_ADDR_ANY, RSC_NOTIFY_ID_ANY, U32_LIMIT


class Report:
    """Raise the first finding (strict) or collect them all (inspect): one validation path."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.findings: list[ResourceTableError] = []

    def __call__(self, reason: str, *, index: int | None = None, offset: int | None = None) -> None:
        err = ResourceTableError(reason, index=index, offset=offset)
        if self.strict:
            raise err
        self.findings.append(err)


@attrs.frozen
class _Region:
    kind: str
    index: int
    start: int
    end: int


class TableRules:
    """What the entries parsed so far claimed: their bytes, address ranges and notify ids."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.spans: list[tuple[int, int, int]] = []  # (start, end, index) of entry bytes
        self.regions: list[_Region] = []
        self.notifyids: dict[int, str] = {}

    def claim(self, i: int, start: int, end: int) -> None:
        for s, e, j in self.spans:
            if start < e and s < end:
                self.report(
                    f"entry bytes [{start:#x}, {end:#x}) overlap entry {j} at [{s:#x}, {e:#x})",
                    index=i,
                    offset=start,
                )
                break
        self.spans.append((start, end, i))

    def region(self, kind: str, i: int, da: int, length: int, field_off: int) -> None:
        """Check a device-address range against earlier ones (see the module docstring)."""
        if da == FW_RSC_ADDR_ANY or length == 0:
            return
        if da + length > U32_LIMIT:
            self.report(
                f"{kind} da range {da:#x}+{length:#x} wraps past 4 GiB", index=i, offset=field_off
            )
            return
        new = _Region(kind, i, da, da + length)
        for old in self.regions:
            if not (new.start < old.end and old.start < new.end):
                continue
            # A trace buffer may live inside a carveout/devmem (TI IPC does), never the reverse
            # of a partial overlap, and never across another trace.
            inner, outer = (new, old) if new.kind == "trace" else (old, new)
            if (
                inner.kind == "trace"
                and outer.kind != "trace"
                and outer.start <= inner.start
                and inner.end <= outer.end
            ):
                continue
            self.report(
                f"{kind} da range [{new.start:#x}, {new.end:#x}) overlaps {old.kind} entry "
                f"{old.index} at [{old.start:#x}, {old.end:#x})",
                index=i,
                offset=field_off,
            )
            break
        self.regions.append(new)

    def notifyid(self, owner: str, i: int, nid: int, field_off: int) -> None:
        """Notify ids share one namespace; RSC_NOTIFY_ID_ANY ("host assigns") may repeat."""
        if nid == RSC_NOTIFY_ID_ANY:
            return
        if nid in self.notifyids:
            self.report(
                f"{owner} notifyid {nid} is already used by {self.notifyids[nid]}",
                index=i,
                offset=field_off,
            )
            return
        self.notifyids[nid] = f"entry {i} {owner}"
