"""Printing: to a stdout whose reader may go away (``aioamp demo | head -3``), status lines and
progress bars on stderr (:func:`status`, :func:`progress`: tqdm, shown only on a terminal).

Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError wherever it happens,
also inside a driver callback of the library, which would log it as a failed driver. The
Python docs' remedy: point stdout at ``/dev/null`` and carry on quietly.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from tqdm import tqdm


def stdout_gone() -> None:
    """The reader of stdout went away: later writes (and the final flush) go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def say(line: str) -> None:
    """Print ``line`` at once; if the reader has gone, stop printing but keep running."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        stdout_gone()


class _Settings:
    #: ``-q``: no status lines, no progress bars (set once by the CLI).
    quiet = False


def set_quiet(quiet: bool) -> None:
    _Settings.quiet = quiet


def status(line: str) -> None:
    """A line about what the command is doing (``waiting for a peer on ...``) on stderr, so
    stdout stays the command's output; ``-q`` silences it."""
    if not _Settings.quiet:
        print(line, file=sys.stderr, flush=True)


def progress(total: int, desc: str, unit: str = "msg") -> tqdm[NoReturn]:
    """A progress bar on stderr while it is a terminal (and not ``-q``); disabled, it prints
    nothing, so a piped or logged run stays quiet. Use as a context manager; ``update(n)``."""
    interactive = not _Settings.quiet and sys.stderr.isatty()
    try:  # a terminal that reports no size (a bare pty) gets 80x24: tqdm prints nothing in 0x0
        size = os.get_terminal_size(sys.stderr.fileno())
        columns, lines = size.columns or 80, size.lines or 24
    except (OSError, ValueError):
        columns, lines = 80, 24
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not interactive,
        leave=False,
        ncols=columns,
        nrows=lines,
        mininterval=0.2,
    )
