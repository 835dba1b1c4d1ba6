"""Boot the User-Mode Linux test kernel as a child process and follow its console.

Theory of operation: :class:`UmlKernel` is an async context manager. Entering it writes the
guest's init script into a fresh host temporary directory (the guest sees it through hostfs),
starts the kernel in a session of its own with the boot line below, and starts one task that
reads the console (the kernel's stdout, stderr merged) into a list of lines. Callers follow the
lines as they come (``async for line in kernel``), wait for one (:meth:`UmlKernel.wait_for_line`)
or for the halt (:meth:`UmlKernel.wait`). A deadline set at boot kills the kernel's whole
process group (the kernel and its ptraced userspace processes) with SIGKILL. Leaving the context
kills whatever still runs and removes the temporary directory, which also holds ``uml_dir`` (a
killed kernel leaves its pid file and mconsole socket there) and any core file::

    linux mem=256M root=/dev/root rootfstype=hostfs rootflags=/ ro init=TMP/init
          [virtio_uml.device=SOCKET:7 ...] con=null con0=fd:0,fd:1 uml_dir=TMP/uml
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import anyio.abc

from remoteproc.errors import StateError

from .errors import KernelExitedError, KernelTimeoutError, UmlArgumentError
from .guest import VirtioDevice, check_word, find_kernel, init_script
from .run import KernelRun, command_status

log = logging.getLogger("aioamp.platform.uml")

_MEM = re.compile(r"\d+[KMG]?")


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is alive (killed but unreaped zombies are not)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        state, _ppid, pgrp = stat[stat.rindex(b")") + 2 :].split()[:3]  # proc_pid_stat(5)
        if int(pgrp) == pgid and state not in (b"Z", b"X"):
            return True
    return False


async def _until_group_dead(pgid: int) -> None:
    """Wait (up to 5 s) until SIGKILL has ended every process of group ``pgid``."""
    with anyio.move_on_after(5):
        while group_alive(pgid):
            await anyio.sleep(0.005)
        return
    log.warning("processes of group %d survived SIGKILL for 5 s", pgid, extra={"pid": pgid})


class UmlKernel:
    """One boot of the UML kernel running ``command`` as the guest's workload.

    Args:
        command: a shell snippet or an argv list for the guest (see
            :func:`~platforms.uml.guest.init_script`); the guest halts when it ends.
        kernel: the kernel binary (default :func:`~platforms.uml.guest.default_kernel_path`).
        devices: vhost-user devices to connect to at boot (sockets, or :class:`VirtioDevice`
            for a device type other than rpmsg).
        mem: guest memory, as the ``mem=`` argument.
        timeout: seconds from boot until the kernel is killed.
        env: extra environment for the guest command.
        extra_args: more kernel command-line words.

    Raises:
        KernelNotFoundError: no kernel binary; the message says how to build it.
        UmlArgumentError: an argument the command line cannot carry.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        kernel: str | os.PathLike[str] | None = None,
        devices: Sequence[VirtioDevice | str | os.PathLike[str]] = (),
        mem: str = "256M",
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if not _MEM.fullmatch(mem):
            raise UmlArgumentError(f"guest memory {mem!r} is not a size like 256M")
        if not timeout > 0:
            raise UmlArgumentError(f"timeout {timeout!r} is not a positive number of seconds")
        self.kernel = find_kernel(kernel)
        self.timeout = timeout
        self._script = init_script(command, env=env)
        self._device_args = [
            (d if isinstance(d, VirtioDevice) else VirtioDevice(d)).boot_arg() for d in devices
        ]
        self._extra = [check_word("kernel argument", a) for a in extra_args]
        self._mem = mem
        self._lines: list[str] = []
        # Events need the running loop: made in __aenter__, before anything waits on them.
        self._changed: anyio.Event | None = None
        self._done: anyio.Event | None = None
        self._proc: anyio.abc.Process | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._tmp: Path | None = None
        self._timed_out = False
        self._partial = b""  # console bytes after the last newline
        self._started_at = self._ended_at = 0.0
        self.args: list[str] = []

    # -- lifetime ------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self._tmp is not None:
            raise StateError("a UmlKernel boots once; make a new one")
        self._changed, self._done = anyio.Event(), anyio.Event()
        self._tmp = Path(tempfile.mkdtemp(prefix="aioamp-uml-"))
        try:
            await self._boot(self._tmp)
        except BaseException:
            await self._cleanup(None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Only a cancellation goes into the task group (its scope must see it); any other
        # exception of the body propagates as it is, never wrapped in an ExceptionGroup.
        await self._cleanup(exc if isinstance(exc, anyio.get_cancelled_exc_class()) else None)

    async def _boot(self, tmp: Path) -> None:
        init = tmp / "init"
        init.write_text(self._script)
        init.chmod(0o755)
        (tmp / "uml").mkdir()
        self.args = [
            f"mem={self._mem}",
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "ro",
            check_word("init script path", f"init={init}"),
            *self._device_args,
            "con=null",
            "con0=fd:0,fd:1",
            check_word("uml_dir", f"uml_dir={tmp / 'uml'}"),
            *self._extra,
        ]
        # No core file from a panicking kernel; cwd in tmp in case the limit is not honoured.
        argv = ["/bin/sh", "-c", 'ulimit -c 0; exec "$0" "$@"', str(self.kernel), *self.args]
        self._started_at = anyio.current_time()
        self._proc = await anyio.open_process(
            argv,
            stdin=subprocess.PIPE,  # kept open: con0 reads fd 0, which must not hit EOF
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            start_new_session=True,
        )
        log.info(
            "booting %s (pid %d): %s",
            *(self.kernel, self._proc.pid, " ".join(self.args)),
            extra={"pid": self._proc.pid, "kernel": str(self.kernel)},
        )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._pump, self._proc, name=f"uml-console-{self._proc.pid}")

    async def _cleanup(self, cancelled: BaseException | None) -> None:
        tg, self._tg = self._tg, None
        try:
            self.kill()
            with anyio.CancelScope(shield=True):
                if tg is not None:
                    await self._events()[1].wait()  # the pump reaps the process after the kill
                if self._proc is not None:
                    await self._proc.aclose()  # its pipes (and reaps it if no pump ran)
        finally:
            try:
                if tg is not None:
                    await tg.__aexit__(type(cancelled) if cancelled else None, cancelled, None)
            finally:
                if self._tmp is not None:
                    shutil.rmtree(self._tmp, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the kernel's process group now (nothing if it has exited)."""
        proc = self._proc
        if proc is not None and not self._events()[1].is_set():
            _killpg(proc.pid)

    async def _pump(self, proc: anyio.abc.Process) -> None:
        """Read the console into lines until EOF and reap the kernel, killing its process group
        at the deadline (or on a failure, or cancellation); ends when all of it is dead."""
        assert proc.stdout is not None
        try:
            with anyio.move_on_after(self.timeout) as deadline:
                await self._read(proc.stdout)
                await proc.wait()
            if deadline.cancelled_caught:
                self._timed_out = True
                log.warning(
                    "kernel pid %d did not halt in %s s: killed",
                    *(proc.pid, self.timeout),
                    extra={"pid": proc.pid, "reason": "timeout"},
                )
                _killpg(proc.pid)
                with anyio.move_on_after(5):
                    await self._read(proc.stdout)  # the tail, up to EOF
        except Exception:  # a broken pipe read: never leave the kernel running unobserved
            log.exception(
                "reading the console of kernel pid %d failed", proc.pid, extra={"pid": proc.pid}
            )
        finally:
            with anyio.CancelScope(shield=True):
                _killpg(proc.pid)  # after a halt, only helpers that outlived the kernel
                await proc.wait()
                await _until_group_dead(proc.pid)
            self._ended_at = anyio.current_time()
            if self._partial:
                self._add(self._partial)
                self._partial = b""
            changed, done = self._events()
            done.set()
            changed.set()

    async def _read(self, stream: anyio.abc.ByteReceiveStream) -> None:
        while True:
            try:
                chunk = await stream.receive(65536)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            for raw in complete:
                self._add(raw)

    def _add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self._lines.append(line)
        log.debug("console: %s", line)
        changed, _ = self._events()
        self._changed = anyio.Event()
        changed.set()

    def _events(self) -> tuple[anyio.Event, anyio.Event]:
        """(the next-line event, the exited event); they exist from __aenter__ on."""
        if self._changed is None or self._done is None:
            raise StateError("the kernel has not been booted: use `async with`")
        return self._changed, self._done

    # -- the console ---------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def workdir(self) -> Path:
        """The boot's host temporary directory: the init script, ``uml/`` (uml_dir), the
        kernel's cwd. Removed when the context exits."""
        if self._tmp is None:
            raise StateError("the kernel has not been booted: use `async with`")
        return self._tmp

    @property
    def lines(self) -> list[str]:
        """The console lines so far (a copy)."""
        return list(self._lines)

    def __aiter__(self) -> AsyncIterator[str]:
        return self.follow()

    async def follow(self, start: int = 0) -> AsyncIterator[str]:
        """Each console line from index ``start`` on, as it comes, until the kernel exits."""
        index = start
        while True:
            while index < len(self._lines):
                yield self._lines[index]
                index += 1
            changed, done = self._events()
            if done.is_set():
                return
            await changed.wait()

    async def wait_for_line(
        self, pattern: str | re.Pattern[str], *, timeout: float | None = None, start: int = 0
    ) -> re.Match[str]:
        """The match of the first console line from index ``start`` that ``pattern`` searches
        successfully, waiting up to ``timeout`` seconds (default: the boot's deadline).

        Raises:
            KernelTimeoutError: no such line in time (the kernel keeps running unless it was
                its deadline).
            KernelExitedError: the kernel exited without printing one.
        """
        regex = re.compile(pattern)
        if timeout is None:
            timeout = self.timeout
        with anyio.move_on_after(timeout):
            async for line in self.follow(start):
                found = regex.search(line)
                if found is not None:
                    return found
            if not self._timed_out:
                raise KernelExitedError(
                    f"the kernel exited without printing {regex.pattern!r}{self._tail()}"
                )
        raise KernelTimeoutError(
            f"no console line matched {regex.pattern!r} within {timeout} s{self._tail()}"
        )

    async def wait(self) -> KernelRun:
        """Wait for the kernel to exit and return the run.

        Raises:
            KernelTimeoutError: it did not halt within ``timeout`` and was killed.
        """
        await self._events()[1].wait()
        if self._timed_out:
            raise KernelTimeoutError(
                f"the kernel did not halt within {self.timeout} s and was killed{self._tail()}"
            )
        assert self._proc is not None and self._proc.returncode is not None
        return KernelRun(
            lines=tuple(self._lines),
            returncode=self._proc.returncode,
            command_status=command_status(self._lines),
            elapsed=self._ended_at - self._started_at,
        )

    def _tail(self) -> str:
        return "; console tail:\n" + "\n".join(self._lines[-30:])
