"""Registry of firmware programs, and the built-in ones.

Theory of operation: an ELF image for a simulated core (the simulator, the PandaBoard model)
names its program in a ``.aioamp.program`` section; the core looks that name up here. The
registry is explicit (``register_program``), never an import driven by file contents, so a
firmware file cannot make the host run arbitrary code. A program is ``async def program(ctx:
FirmwareContext)``; it sees only what real firmware sees (see
:class:`~platforms.runtime.context.FirmwareContext`).

Built-ins: ``rpmsg-client-sample`` (the remote half of Linux's rpmsg client sample: announce,
echo 100 messages, withdraw) and ``rpmsg-echo`` (announce ``rpmsg-echo`` and echo forever).
Both honour the context's fault injection (crash or hang after N messages, never announce).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import anyio

from remoteproc.errors import ArgumentTypeError, BootError, RemoteprocError
from rpmsg.samples import DEFAULT_COUNT, SERVICE_NAME

if TYPE_CHECKING:
    from .context import FirmwareContext

Program = Callable[["FirmwareContext"], Awaitable[None]]

_PROGRAMS: dict[str, Program] = {}

#: The longest program name, in bytes (the section holds it plus a NUL).
MAX_PROGRAM_NAME = 63


class ProgramNameError(RemoteprocError, ValueError):
    """A firmware program name that no image could carry or the registry hold."""


def check_program_name(name: object) -> str:
    """``name`` if it is a valid program name, else :class:`ProgramNameError` saying why.

    The one rule for the registry and the image builders: 1 to 63 bytes of visible ASCII
    (``!`` to ``~``: no space, control character or NUL, which would end the name early in
    the ``.aioamp.program`` section; the parser reads ASCII only)."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"a program name is a str, not {type(name).__name__}")
    bad = sorted({ch for ch in name if not "!" <= ch <= "~"})
    if bad:
        raise ProgramNameError(
            f"program name {name!r} has {', '.join(map(repr, bad))}: names are visible ASCII "
            "('!' to '~', no spaces)"
        )
    if not 1 <= len(name) <= MAX_PROGRAM_NAME:
        raise ProgramNameError(
            f"program name {name!r} is {len(name)} bytes; names are 1..{MAX_PROGRAM_NAME} bytes"
        )
    return name


def register_program(name: str, program: Program, *, replace: bool = False) -> None:
    """Make ``program`` bootable by images whose ``.aioamp.program`` is ``name`` (see
    :func:`check_program_name`)."""
    check_program_name(name)
    if not callable(program):
        raise ArgumentTypeError(
            f"a firmware program is an async callable, not {type(program).__name__}"
        )
    if name in _PROGRAMS and not replace:
        raise ValueError(f"a firmware program named {name!r} is already registered")
    _PROGRAMS[name] = program


def unregister_program(name: str) -> None:
    """Forget ``name`` (no error if unknown); images naming it no longer boot."""
    _PROGRAMS.pop(name, None)


def import_program_modules(modules: Iterable[str], where: str) -> None:
    """Import the modules that register programs (a simulated core's ``program_modules``),
    as the host and a core process do before they look a program up.

    Raises:
        BootError: a module failed to import (its error in the message, as the cause).
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise BootError(
                f"{where}: cannot import program module {module!r}: {type(exc).__name__}: {exc}"
            ) from exc


def resolve_program(
    name: str, modules: Iterable[str], *, where: str, process: bool = False
) -> Program:
    """The program ``name`` of an image, for a core about to start: ``modules`` (its
    ``program_modules``) imported first; with ``process=True`` one the core process can find.

    Raises:
        BootError: a module failed to import, ``name`` is not registered, or (process mode,
            no ``modules``) it is registered by ``__main__``, which a core process never
            imports; each message says what to do.
    """
    modules = tuple(modules)
    import_program_modules(modules, where)
    program = get_program(name)
    if program is None:
        raise BootError(
            f"{where}: the image names firmware program {name!r}, which is not registered "
            f"(known: {', '.join(program_names())}); register it with "
            "platforms.sim.register_program()"
        )
    if process and not modules and getattr(program, "__module__", None) == "__main__":
        raise BootError(
            f"{where}: firmware program {name!r} is registered by __main__, which a core "
            "process (process=True) does not import: register it in a module and name that "
            "module in SimPlatform(..., program_modules=('module',))"
        )
    return program


def get_program(name: str) -> Program | None:
    return _PROGRAMS.get(name)


def program_names() -> list[str]:
    return sorted(_PROGRAMS)


async def echo_service(ctx: FirmwareContext, name: str, count: int | None) -> None:
    """Announce ``name``, echo messages back to their sender; after ``count`` echoes withdraw
    the service (NS DESTROY). Then idle, as firmware does, until the core is stopped."""
    async with ctx.rpmsg() as bus:
        if ctx.faults.never_announce:
            ep = bus.create_endpoint()
            ctx.log(f"{name}: endpoint 0x{ep.addr:x} created, not announced (fault)")
        else:
            ep = await bus.create_service(name)
            ctx.log(f"{name}: announced at 0x{ep.addr:x}")
        echoed = 0
        async for msg in ep:
            await ctx.message_handled()
            await ep.send_to(msg.src, msg.payload)
            echoed += 1
            if count is not None and echoed >= count:
                break
        ctx.log(f"{name}: echoed {echoed} messages, withdrawing")
        await ep.aclose()
        await anyio.sleep_forever()


async def client_sample_remote(ctx: FirmwareContext) -> None:
    await echo_service(ctx, SERVICE_NAME, int(ctx.args.get("count", DEFAULT_COUNT)))


async def rpmsg_echo(ctx: FirmwareContext) -> None:
    count = ctx.args.get("count")
    await echo_service(ctx, "rpmsg-echo", None if count is None else int(count))


register_program("rpmsg-client-sample", client_sample_remote)
register_program("rpmsg-echo", rpmsg_echo)
