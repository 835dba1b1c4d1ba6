"""Models of the kernel's user-space faces, for testing code that uses them without the
hardware: :class:`RemoteprocModel` (/sys/class/remoteproc with remoteproc_sysfs.c's
semantics, its debugfs traces, the firmware search path and its uevents)."""

from .files import Credentials, FileNode
from .remoteproc import ModelProcessor, RemoteprocModel

__all__ = ["Credentials", "FileNode", "ModelProcessor", "RemoteprocModel"]
