"""Which uevents a Linux bus follows (see :mod:`platforms.linux.uevent`). Pure."""

from typing import Literal

UeventSource = Literal["auto", "kernel", "udev"]
UEVENT_SOURCES: tuple[UeventSource, ...] = ("auto", "kernel", "udev")
