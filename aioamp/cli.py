"""The ``aioamp`` command line: ``aioamp demo`` and friends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .bench import add_bench_parser
from .demo import add_demo_parser
from .fw import add_fw_parser
from .ipc import add_ipc_parsers
from .loop import Terminated, leaf_exceptions
from .options import UsageError
from .output import stdout_gone
from .rproc_cli import add_rproc_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aioamp", description="Boot, control and talk to remote processors over rpmsg."
    )
    parser.add_argument("--version", action="version", version=f"aioamp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_parser(sub)
    add_ipc_parsers(sub)
    add_fw_parser(sub)
    add_bench_parser(sub)
    add_rproc_parser(sub)
    return parser


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except UsageError as exc:
        print(f"aioamp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated):
        return 130
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. A reader that went away (``aioamp demo | head``) ends
    the command quietly, as the Python docs advise: also when the final flush finds it gone
    (stdout is block-buffered into a pipe, so that is where it usually shows)."""
    status = 0
    try:
        try:
            status = _dispatch(argv)
        finally:
            sys.stdout.flush()  # also after --help / a usage error (SystemExit)
    except Exception as exc:
        if not all(isinstance(leaf, BrokenPipeError) for leaf in leaf_exceptions(exc)):
            raise
        stdout_gone()  # the interpreter's own final flush must not fail again
    return status
