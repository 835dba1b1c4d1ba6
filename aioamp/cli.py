"""The ``aioamp`` command line: ``aioamp demo`` and friends.

Each command lives in its own module with an ``add_*_parser(sub)``; this one wires them up and
gives every command the same frame: help texts that show defaults, the logging options, one-line
errors prefixed ``aioamp <command>:`` and the exit statuses of :mod:`.exits`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from .bench import add_bench_parser
from .capture import add_capture_parser
from .demo import add_demo_parser
from .doctor import add_doctor_parser
from .exits import EXIT_STATUS_HELP, INTERRUPTED, USAGE, error_line, exit_status
from .fw import add_fw_parser
from .ipc import add_ipc_parsers
from .logs import add_logging_options, logging_configured
from .loop import leaf_exceptions
from .output import set_quiet, stdout_gone
from .rproc_cli import add_rproc_parser
from .version import VersionAction


class Parser(argparse.ArgumentParser):
    """A usage error is one line, ``aioamp <command>: error: <message>``, and exit status 2
    (argparse would print the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """A description or epilog that holds line breaks is kept as written (the exit-status
    table), others are wrapped; every option's help ends with its default, unless it has none
    worth saying (a flag, None) or says it already."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default in (None, False, argparse.SUPPRESS)
            or action.nargs == 0
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def _frame(parser: argparse.ArgumentParser) -> None:
    """Give every command (and sub-command) below ``parser`` the common frame."""
    for child in _subparsers(parser):
        child.formatter_class = HelpFormatter
        add_logging_options(child, defaults=False)
        child.set_defaults(command_prog=child.prog)
        _frame(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="aioamp",
        description="Boot, control and talk to remote processors over rpmsg.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    add_logging_options(parser, defaults=True)
    parser.set_defaults(command_prog="aioamp")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_parser(sub)
    add_ipc_parsers(sub)
    add_fw_parser(sub)
    add_bench_parser(sub)
    add_capture_parser(sub)
    add_doctor_parser(sub)
    add_rproc_parser(sub)
    _frame(parser)
    return parser


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet > 0)
    try:
        with logging_configured(args):
            status: int = args.func(args)
    except (Exception, KeyboardInterrupt) as exc:
        found = exit_status(exc)
        if found is None:
            raise  # a bug: its traceback
        if found != INTERRUPTED:
            print(error_line(args.command_prog, exc), file=sys.stderr)
        return found
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
