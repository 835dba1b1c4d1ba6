"""Printing to a stdout whose reader may go away (``aioamp demo | head -3``).

Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError wherever it happens,
also inside a driver callback of the library, which would log it as a failed driver. The
Python docs' remedy: point stdout at ``/dev/null`` and carry on quietly.
"""

from __future__ import annotations

import os
import sys


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
