"""Requests reassembled from the bytes and descriptors read off a vhost-user socket. Pure.

Theory of operation: the shell reads exactly :meth:`RequestReader.wanted` bytes at a time (the
rest of the current header, or of its payload), so the descriptors that come with one read
belong to the message those bytes belong to: SCM_RIGHTS descriptors ride on the first byte of
the sendmsg() that carried them, and a read never spans two messages. A header is checked as
soon as it is complete, before its payload is read (a hostile size never makes us buffer it).
"""

from __future__ import annotations

from collections.abc import Sequence

from .protocol import (
    HEADER,
    MAX_REGIONS,
    Code,
    Request,
    VhostUserProtocolError,
    check_header,
    decode_request,
)


class RequestReader:
    """Reassembles requests from the bytes and descriptors read off the socket.

    Read :meth:`wanted` bytes (with their descriptors), :meth:`feed` them, then take the
    request with :meth:`next_request`. A refused message raises
    :class:`VhostUserProtocolError`; the connection is then beyond repair (the stream has lost
    its framing) and the caller closes it and the error's descriptors.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fds: list[int] = []
        self._header: tuple[Code, int, int] | None = None  # code, flags, size

    def wanted(self) -> int:
        """Bytes still missing from the current header or payload (0 only while a complete
        request waits for :meth:`next_request`)."""
        if self._header is None:
            return HEADER.size - len(self._buf)
        return self._header[2] - len(self._buf)

    @property
    def held_fds(self) -> list[int]:
        """Descriptors of a message not yet complete (the caller closes them at teardown)."""
        return list(self._fds)

    def feed(self, data: bytes | bytearray | memoryview, fds: Sequence[int] = ()) -> None:
        """Add received bytes (at most :meth:`wanted`) and the descriptors that came with them.

        Raises:
            VhostUserProtocolError: too many descriptors, or a header this implementation
                refuses (the error then holds the message's descriptors).
            ValueError: more bytes than :meth:`wanted` (the caller's bug).
        """
        if len(data) > self.wanted():
            raise ValueError(f"fed {len(data)} bytes, only {self.wanted()} wanted")
        self._fds.extend(fds)
        if len(self._fds) > MAX_REGIONS:
            raise VhostUserProtocolError(
                f"more than {MAX_REGIONS} file descriptors with one message", fds=self._take_fds()
            )
        self._buf += data
        if self._header is None and len(self._buf) == HEADER.size:
            request, flags, size = HEADER.unpack(self._buf)
            self._buf.clear()
            try:
                code = check_header(request, flags, size, self._fds)
            except VhostUserProtocolError:
                self._fds = []  # they travel with the error
                raise
            self._header = (code, flags, size)

    def next_request(self) -> Request | None:
        """The request completed by the bytes fed so far, or None."""
        header = self._header
        if header is None or len(self._buf) < header[2]:
            return None
        code, flags, _size = header
        payload, fds = bytes(self._buf), self._take_fds()
        self._buf.clear()
        self._header = None
        return decode_request(code, flags, payload, fds)

    def _take_fds(self) -> list[int]:
        fds, self._fds = self._fds, []
        return fds
