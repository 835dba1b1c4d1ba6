"""``aioamp doctor``: check a Linux system for what rpmsg and remoteproc users trip over.

:mod:`.probe` reads the facts below a root directory, :mod:`.checks` judges them (pure),
:mod:`.report` prints them. Exit status 0 when nothing failed, 1 when a check did.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from platforms.sim.platform import DEFAULT_DDR_SIZE
from transports.virtio.layout import SharedLayout

from .checks import diagnose
from .facts import Facts, Finding, Status
from .probe import probe
from .report import schema, to_json, to_text

__all__ = ["Facts", "Finding", "Status", "add_doctor_parser", "diagnose", "probe", "schema"]

#: /dev/shm room for one simulated core in its own process and one shm:// link.
SHM_NEEDED = DEFAULT_DDR_SIZE + SharedLayout().total_size


def add_doctor_parser(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this system for what rpmsg and remoteproc users trip over",
        description="Checks the kernel's rpmsg modules, the remote processors and their "
        "firmware, /dev/rpmsg* permissions, the firmware search path, the PandaBoard's UIO "
        "devices, /dev/shm and the C vring extension; each finding that is not ok says how to "
        "fix it. Exit status 0 when no check failed, 1 when one did.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (see schema.json)")
    p.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="read /proc, /sys, /dev and /lib below DIR (a target's mounted root file system)",
    )
    p.set_defaults(func=doctor_main)


def doctor_main(args: argparse.Namespace) -> int:
    facts = probe(args.root)
    findings = diagnose(facts, SHM_NEEDED)
    if args.json:
        print(json.dumps(to_json(facts, findings), indent=2))
    else:
        print(to_text(facts, findings))
    return 1 if any(f.status is Status.FAIL for f in findings) else 0
