"""Exit statuses and the one-line error of every ``aioamp`` command.

Theory of operation: a command either returns its status or raises. :func:`exit_status`
sorts what it raised (also the leaves of the exception groups its task groups wrap errors
in): a usage mistake is 2, a peer or transport that went away (or never came) is 3, any other
error of the library is 1, and anything else is a bug that keeps its traceback. The CLI prints
the error as one line, ``aioamp <command>: error: <message>``.
"""

from __future__ import annotations

from collections.abc import Sequence

from remoteproc import RemoteprocError
from rpmsg import BusClosedError, RpmsgError
from transports import TransportError, TransportURLError
from transports.errors import TransportClosedError

from .loop import EventLoopChoiceError, Terminated, leaf_exceptions

OK = 0
FAILED = 1
USAGE = 2
GONE = 3
INTERRUPTED = 130

#: For ``aioamp --help`` and the README.
EXIT_STATUS_HELP = f"""exit status:
  {OK}    ok
  {FAILED}    failed (mismatched echoes, an invalid image, a failed boot, doctor found a problem)
  {USAGE}    usage error (an unknown option, a bad value, an unreadable input file)
  {GONE}    the peer or the transport is gone: it went away, or none came within --timeout
  {INTERRUPTED}  interrupted (SIGINT or SIGTERM); the command cleaned up first"""


class UsageError(Exception):
    """A combination of options the parser cannot check alone (``--size`` against the MTU of
    ``--transport``): exit status 2."""


class CommandError(Exception):
    """The command ran and failed (an invalid image): exit status 1."""


class PeerGoneError(Exception):
    """No peer came within the command's ``--timeout``: exit status 3."""


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, UsageError | TransportURLError | EventLoopChoiceError):
        return USAGE
    if isinstance(exc, PeerGoneError | BusClosedError | TransportClosedError):
        return GONE
    if isinstance(exc, Terminated | KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, CommandError | RpmsgError | TransportError | RemoteprocError):
        return FAILED
    return None


def exit_status(exc: BaseException) -> int | None:
    """The status for what a command raised, or None if it is a bug (not one of ours, or a
    group holding one). Of several errors the most specific status wins: gone, then usage."""
    statuses = [_status(leaf) for leaf in leaf_exceptions(exc)]
    if None in statuses:
        return None
    for status in (INTERRUPTED, GONE, USAGE):
        if status in statuses:
            return status
    return FAILED


def error_line(command: str, exc: BaseException) -> str:
    """``aioamp <command>: error: <message>``, one line whatever ``exc`` holds."""
    leaves: Sequence[BaseException] = leaf_exceptions(exc)
    messages = dict.fromkeys(str(leaf) or type(leaf).__name__ for leaf in leaves)
    text = "; ".join(messages).replace("\n", " ")
    return f"{command}: error: {text}"
