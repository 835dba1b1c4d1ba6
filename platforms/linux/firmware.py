"""Putting your own firmware where the kernel's remoteproc looks for it, without ever
overwriting someone else's file.

Theory of operation: the kernel loads ``firmware`` by name from its search path
(``drivers/base/firmware_loader/main.c``, ``fw_path[]``: firmware_class's ``path`` parameter if
set, then /lib/firmware/updates/$(uname -r), /lib/firmware/updates, /lib/firmware/$(uname -r),
/lib/firmware). :class:`FirmwareStore` copies an image into a directory of that path, into a
subdirectory of its own (``aioamp/``) under a content-addressed name: ``aioamp/<first 16 hex
digits of its sha256>-<file name>``. Two images never share a name, the same image always gets
the same one, and no file of a vendor's package is touched:

* the copy is written to a temporary file and *linked* into place (``link(2)`` never replaces
  an existing name), so a concurrent install of the same image cannot tear it;
* a file already at that name is used only if its bytes are the image's; anything else is
  refused (:class:`FirmwareConflictError`).

The directory is /lib/firmware unless told otherwise; another directory must be on the search
path, or become firmware_class's ``path`` through :meth:`FirmwareStore.claim_custom_path`,
which sets the parameter only while it is empty (the path is global: another owner's setting
is never replaced).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from remoteproc.errors import RemoteprocError
from remoteproc.firmware import MAX_FIRMWARE_SIZE

from .errors import remoteproc_permission_error
from .files import KernelFiles
from .rproc_sysfs import FIRMWARE_PATH_PARAM, search_path

#: The subdirectory aioamp owns in a firmware directory.
SUBDIR = "aioamp"
DEFAULT_DIRECTORY = "/lib/firmware"


class FirmwareConflictError(RemoteprocError, FileExistsError):
    """A file that is not this image already has its name; nothing was written."""


class FirmwareLocationError(RemoteprocError, ValueError):
    """The directory is not on the kernel's firmware search path, or the path parameter
    belongs to someone else."""


class FirmwareStore:
    """Installs images into ``directory`` (a kernel path on the search path).

    Args:
        files: the kernel's files (the host's by default).
        directory: where to install (default /lib/firmware).
        release: the running kernel's release (for the search path; default ``uname -r``).
    """

    def __init__(
        self, files: KernelFiles, directory: str = DEFAULT_DIRECTORY, release: str | None = None
    ) -> None:
        self.files = files
        self.directory = directory.rstrip("/") or "/"
        self.release = release or os.uname().release

    def custom_path(self) -> str:
        try:
            return self.files.read(FIRMWARE_PATH_PARAM).strip()
        except OSError:
            return ""

    def search_path(self) -> list[str]:
        return search_path(self.custom_path(), self.release)

    def claim_custom_path(self) -> None:
        """Make :attr:`directory` firmware_class's ``path`` if that is unset (or already it).

        Raises:
            FirmwareLocationError: it names another directory (left as it is).
            RemoteprocPermissionError: the parameter is root's (the message says so).
        """
        current = self.custom_path()
        if current == self.directory:
            return
        if current:
            raise FirmwareLocationError(
                f"firmware_class.path is {current!r}, not {self.directory!r}: it is global, "
                "and not ours to change"
            )
        try:
            self.files.write(FIRMWARE_PATH_PARAM, self.directory)
        except OSError as exc:
            raise self._error(exc, FIRMWARE_PATH_PARAM, "write") from None

    def install(self, image: bytes | str | os.PathLike[str], name: str | None = None) -> str:
        """Copy ``image`` (its bytes, or a file) into the store; returns the firmware name to
        write to a processor's ``firmware`` (``aioamp/<hash>-<name>``).

        Raises:
            FirmwareLocationError: :attr:`directory` is not on the search path.
            FirmwareConflictError: a different file has that name already.
            RemoteprocPermissionError: the directory is not writable here (the message says
                how to make it so).
        """
        if self.directory not in self.search_path():
            raise FirmwareLocationError(
                f"the kernel does not look for firmware in {self.directory} (its search path: "
                f"{', '.join(self.search_path())}); use claim_custom_path() or another directory"
            )
        if isinstance(image, bytes | bytearray | memoryview):
            data, base = bytes(image), name or "firmware.elf"
        else:
            path = Path(image)
            data, base = _read_image(path), name or path.name
        if not base or "/" in base or base.startswith("."):
            raise FirmwareLocationError(f"firmware file name {base!r} is not a plain name")
        fw_name = f"{SUBDIR}/{hashlib.sha256(data).hexdigest()[:16]}-{base}"
        target = f"{self.directory}/{fw_name}"
        host = Path(self.files.host_path(target))
        try:
            host.parent.mkdir(parents=True, exist_ok=True)
            self._place(host, data)
        except OSError as exc:
            raise self._error(exc, target, "write") from None
        return fw_name

    def _place(self, host: Path, data: bytes) -> None:
        if host.exists():
            if host.read_bytes() != data:
                raise FirmwareConflictError(f"{host} exists with other contents: left as it is")
            return
        tmp = host.with_name(f".{host.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, host)  # never replaces a file: EEXIST if one appeared meanwhile
            except FileExistsError:
                if host.read_bytes() != data:
                    raise FirmwareConflictError(f"{host} appeared with other contents") from None
        finally:
            tmp.unlink(missing_ok=True)

    def _error(self, exc: OSError, path: str, action: str) -> RemoteprocError:
        if isinstance(exc, RemoteprocError):
            return exc
        denied = remoteproc_permission_error(exc.errno or 0, path, action)
        if denied is not None:
            return denied
        return FirmwareLocationError(f"cannot {action} {path}: {exc.strerror}")


def _read_image(path: Path) -> bytes:
    """A firmware file's bytes: a regular file of at most MAX_FIRMWARE_SIZE."""
    try:
        st = path.stat()
        if not path.is_file() or st.st_size > MAX_FIRMWARE_SIZE:
            raise FirmwareLocationError(
                f"{path} is not a regular file of at most {MAX_FIRMWARE_SIZE} bytes"
            )
        return path.read_bytes()
    except OSError as exc:
        raise FirmwareLocationError(f"cannot read {path}: {exc.strerror}") from None


__all__ = ["FirmwareConflictError", "FirmwareLocationError", "FirmwareStore"]
