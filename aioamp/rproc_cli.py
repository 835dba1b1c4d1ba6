"""``aioamp rproc``: the kernel's remote processors (/sys/class/remoteproc) from the shell.

``list``, ``status``, ``start``, ``stop``, ``firmware``, ``trace`` and ``recovery``, each one
read or write of sysfs with the kernel's errors explained (:mod:`platforms.linux.rproc_files`).
``start`` refuses a processor that runs already: the kernel would count a second start as
another power reference, and the next ``stop`` would then stop nothing (``--force`` writes it
anyway). Errors are one line on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import attrs

from platforms.linux.files import HostFiles, KernelFiles
from platforms.linux.firmware import FirmwareStore
from platforms.linux.rproc_files import RemoteprocFiles, find_remoteproc, list_remoteprocs
from platforms.linux.rproc_sysfs import UP, RemoteprocInfo
from remoteproc.errors import RemoteprocError
from remoteproc.states import State


def add_rproc_parser(sub: Any) -> None:
    p = sub.add_parser(
        "rproc",
        help="the Linux kernel's remote processors (/sys/class/remoteproc)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # a sysfs tree elsewhere
    p.set_defaults(func=rproc_main)
    cmd = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    one = cmd.add_parser("list", help="every processor: name, state, firmware, settings")
    one.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name, text in [
        ("status", "one processor's state and settings"),
        ("start", "start (or attach to) a processor"),
        ("stop", "stop a processor"),
        ("firmware", "show or set the firmware file the next start loads"),
        ("trace", "print the firmware's trace buffer (debugfs)"),
        ("recovery", "show or set crash recovery, or recover a crashed processor now"),
    ]:
        one = cmd.add_parser(name, help=text)
        one.add_argument("processor", help="its name (/sys/class/remoteproc/*/name) or remoteprocN")
        if name == "status":
            one.add_argument("--json", action="store_true", help="print JSON instead of a table")
        elif name in ("start", "firmware"):
            if name == "firmware":
                one.add_argument("name", nargs="?", help="a file name under the search path")
            else:
                one.add_argument("--firmware", metavar="NAME", help="set the firmware first")
                one.add_argument("--force", action="store_true", help="start even if running")
            one.add_argument(
                "--install",
                metavar="FILE",
                help="copy FILE onto the firmware search path (never over another file) and use it",
            )
        elif name == "trace":
            one.add_argument("--index", type=int, default=0, help="which trace buffer")
        elif name == "recovery":
            one.add_argument(
                "setting",
                nargs="?",
                choices=["enabled", "disabled", "recover"],
                help="the new setting, or recover a crashed processor now (none: show)",
            )


def rproc_main(args: argparse.Namespace) -> int:
    return run(args, HostFiles(args.root))


def run(args: argparse.Namespace, files: KernelFiles) -> int:
    """Perform ``args.action`` on ``files`` (the host's, or a model in tests)."""
    try:
        if args.action == "list":
            return _list(files, args.json)
        proc = RemoteprocFiles(files, find_remoteproc(files, args.processor))
        return int(_ACTIONS[args.action](proc, args) or 0)
    except (RemoteprocError, LookupError) as exc:
        print(f"aioamp rproc {args.action}: {exc}", file=sys.stderr)
        return 1


def _as_dict(info: RemoteprocInfo) -> dict[str, Any]:
    out = attrs.asdict(info)
    out["state"] = info.state_label
    out["recovery"] = "enabled" if info.recovery else "disabled"
    return out


def _list(files: KernelFiles, as_json: bool) -> int:
    infos = list_remoteprocs(files)
    if as_json:
        print(json.dumps([_as_dict(i) for i in infos], indent=2))
        return 0
    rows: list[tuple[str, ...]] = [("DEVICE", "NAME", "STATE", "FIRMWARE", "RECOVERY", "COREDUMP")]
    rows += [tuple(str(v) for v in _as_dict(i).values()) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not infos:
        print("(no remote processors: /sys/class/remoteproc is empty or missing)")
    return 0


def _status(proc: RemoteprocFiles, args: argparse.Namespace) -> None:
    info = _as_dict(proc.info())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")


def _install(proc: RemoteprocFiles, args: argparse.Namespace) -> None:
    """``--install FILE`` (copy, then use) or ``--firmware NAME`` / ``NAME`` (use)."""
    name = getattr(args, "firmware", None) or getattr(args, "name", None)
    if args.install:
        name = FirmwareStore(proc.files).install(args.install)
        print(f"installed {args.install} as {name}")
    if name:
        proc.set_firmware(name)
        print(f"{proc.device}: firmware {name}")


def _start(proc: RemoteprocFiles, args: argparse.Namespace) -> int:
    state = proc.state()
    if state in UP and not args.force:
        print(
            f"aioamp rproc start: {proc.device} is {state.label} already; another start only "
            "takes another kernel power reference, after which one stop stops nothing "
            "(--force to write it anyway)",
            file=sys.stderr,
        )
        return 1
    if state is State.CRASHED:
        print(f"aioamp rproc start: {proc.device} crashed: use `recovery recover`", file=sys.stderr)
        return 1
    _install(proc, args)
    proc.write("state", "start")
    print(f"{proc.device}: {proc.info().state_label}")
    return 0


def _stop(proc: RemoteprocFiles, args: argparse.Namespace) -> None:
    proc.write("state", "stop")
    state = proc.state()
    label = "invalid" if state is None else state.label
    note = " (other users still hold power references: the kernel counts each start)"
    print(f"{proc.device}: {label}" + (note if state in UP else ""))


def _firmware(proc: RemoteprocFiles, args: argparse.Namespace) -> None:
    if args.name or args.install:
        _install(proc, args)
    else:
        print(proc.firmware())


def _trace(proc: RemoteprocFiles, args: argparse.Namespace) -> None:
    text = proc.trace(args.index)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def _recovery(proc: RemoteprocFiles, args: argparse.Namespace) -> None:
    if args.setting:
        proc.set_recovery(args.setting)
    print(f"{proc.device}: recovery {'enabled' if proc.recovery() else 'disabled'}, "
          f"{proc.info().state_label}")  # fmt: skip


_ACTIONS: dict[str, Any] = {
    "status": _status,
    "start": _start,
    "stop": _stop,
    "firmware": _firmware,
    "trace": _trace,
    "recovery": _recovery,
}
