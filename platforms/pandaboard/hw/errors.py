"""Errors of the OMAP4 backend, rooted in :class:`~transports.errors.TransportError`."""

from __future__ import annotations

from transports.errors import TransportError


class Omap4Error(TransportError, OSError):
    """Hardware access failed (no /dev/mem access, periphery missing, bad mapping)."""


class MailboxError(Omap4Error):
    """A mailbox operation could not be performed (bad fifo, closed driver)."""


class UioError(Omap4Error):
    """A UIO device could not be found, read or mapped."""
