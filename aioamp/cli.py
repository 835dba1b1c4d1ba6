"""The ``aioamp`` command line: ``aioamp demo`` and friends."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .bench import add_bench_parser
from .demo import add_demo_parser
from .fw import add_fw_parser
from .ipc import add_ipc_parsers
from .loop import Terminated, leaf_exceptions


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except (KeyboardInterrupt, Terminated):
        return 130
    except Exception as exc:
        if not all(isinstance(leaf, BrokenPipeError) for leaf in leaf_exceptions(exc)):
            raise
        # The reader went away (e.g. `aioamp demo | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    sys.stdout.flush()
    return status
