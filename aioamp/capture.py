"""``aioamp capture``: run an aioamp command and record every rpmsg bus it opens into a pcapng
file that Wireshark reads; ``--install-dissector`` installs the Lua dissector that decodes it.

The command runs in this process, inside a process-wide capture (:func:`rpmsg.tap.capturing`):
buses in other processes (a simulated core's own process, the peer of ``echo``) are not
recorded, but the buses here see both directions of their links.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rpmsg.capture import LINKTYPE_USER0, LINKTYPE_USER15, PcapngCapture, install_dissector
from rpmsg.tap import capturing

from .options import UsageError, integer
from .output import say

EXAMPLE = "aioamp capture -o t.pcapng -- demo"
USAGE_HINT = f"aioamp capture -o FILE -- COMMAND [ARGS...], e.g. {EXAMPLE}"


def _linktype(text: str) -> int:
    value = integer(LINKTYPE_USER0)(text)
    if value > LINKTYPE_USER15:
        raise argparse.ArgumentTypeError(
            f"{value} is not a user link type ({LINKTYPE_USER0}..{LINKTYPE_USER15})"
        )
    return value


def add_capture_parser(sub: Any) -> None:
    p = sub.add_parser(
        "capture",
        help="record the rpmsg traffic of an aioamp command into a pcapng file (Wireshark)",
        description="Run an aioamp command in this process and record every message of every "
        "rpmsg bus it opens, each way, into a pcapng file: one interface per bus. Wireshark "
        "decodes it with the dissector --install-dissector installs.",
        epilog=f"example: {EXAMPLE}; then: wireshark t.pcapng",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="the pcapng file to write (replaced)")
    p.add_argument(
        "--linktype",
        type=_linktype,
        default=LINKTYPE_USER0,
        help=f"the interfaces' link type, LINKTYPE_USER0..15 = {LINKTYPE_USER0}..{LINKTYPE_USER15}"
        " (default: %(default)s; the dissector's preference must match)",
    )
    p.add_argument(
        "--install-dissector",
        action="store_true",
        help="install the Wireshark Lua dissector (aioamp-rpmsg.lua) and exit",
    )
    p.add_argument(
        "--dir",
        metavar="DIR",
        help="where --install-dissector puts it (default: ~/.local/lib/wireshark/plugins, "
        "Wireshark's personal plugins folder)",
    )
    p.add_argument(
        "argv",  # not "command": the top-level parser keeps the subcommand's name there
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND ...",
        help="the aioamp command to run, with its arguments (after --)",
    )
    p.set_defaults(func=capture_main)


def capture_main(args: argparse.Namespace) -> int:
    command: list[str] = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.install_dissector:
        if command or args.output is not None:
            raise UsageError("--install-dissector takes neither -o nor a command")
        try:
            path = install_dissector(args.dir)
        except OSError as exc:
            print(f"aioamp capture: cannot install the dissector: {exc}", file=sys.stderr)
            return 1
        say(f"installed the Wireshark dissector: {path}")
        return 0
    if args.dir is not None:
        raise UsageError("--dir goes with --install-dissector")
    if not command:
        raise UsageError(f"no command to run: {USAGE_HINT}")
    if args.output is None:
        raise UsageError(f"-o FILE is required: {USAGE_HINT}")
    from . import cli  # here: cli imports this module

    inner = cli.build_parser().parse_args(command)  # a usage error exits 2 before any file
    if inner.command == "capture":
        raise UsageError("aioamp capture cannot capture itself")
    try:
        capture = PcapngCapture(args.output, linktype=args.linktype)
    except OSError as exc:
        print(f"aioamp capture: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    with capture, capturing(capture):
        status = cli.main(command)
    stats = capture.statistics()
    print(
        f"aioamp capture: {stats.records} messages of {stats.links} "
        f"bus{'' if stats.links == 1 else 'es'} written to {args.output}",
        file=sys.stderr,
    )
    if stats.error is not None or stats.dropped:
        why = stats.error or "they came after the capture closed"
        print(f"aioamp capture: {stats.dropped} messages not written: {why}", file=sys.stderr)
        return status or 1
    return status
