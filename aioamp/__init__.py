"""aioamp: boot, control and talk to the other processors of a heterogeneous SoC.

The library is four import packages (``transports``, ``rpmsg``, ``remoteproc``,
``platforms``); this package holds the ``aioamp`` command-line tool.
"""

__version__ = "0.1.0"
