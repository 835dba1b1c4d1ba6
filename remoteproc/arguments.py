"""Checks of what a caller passes to :meth:`RemoteprocManager.add
<remoteproc.manager.RemoteprocManager.add>`, before anything is registered or bound.

Each refusal is a :class:`~remoteproc.errors.RemoteprocError` that is also the matching
builtin: :class:`~remoteproc.errors.ArgumentTypeError` (``TypeError``) for a value of the
wrong type, :class:`~remoteproc.errors.RegistrationError` (``ValueError``) for a value the
registry cannot take, :class:`~remoteproc.errors.ProcessorNotFoundError` (``LookupError``) for
an unknown dependency. The firmware source has its own module, :mod:`remoteproc.source`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar, cast

from .errors import ArgumentTypeError, ProcessorNotFoundError, RegistrationError
from .platform import PlatformDriver
from .recovery import RecoveryPolicy


class _Named(Protocol):
    @property
    def name(self) -> str: ...


P = TypeVar("P", bound=_Named)


def check_platform(platform: object, name: object) -> str:
    """The processor's name (``name``, default ``platform.name``), once both are valid and the
    platform is free: a platform instance drives one processor at a time."""
    if not isinstance(platform, PlatformDriver):
        kind = type(platform).__name__
        raise ArgumentTypeError(f"platform must be a PlatformDriver (e.g. SimPlatform), not {kind}")
    name = platform.name if name is None else name
    if not isinstance(name, str):
        raise ArgumentTypeError(f"a processor name is a str, not {type(name).__name__}")
    if not name:
        raise RegistrationError("a processor name cannot be empty")
    owner = platform.events
    if getattr(owner, "holds_platform", False):
        raise RegistrationError(
            f"platform {platform.name!r} already belongs to processor "
            f"{getattr(owner, 'name', '?')!r}: a platform instance drives one processor "
            "(detach or remove that one first)"
        )
    return name


def recovery_setting(recovery: object) -> tuple[bool, RecoveryPolicy]:
    """``recovery=`` as (enabled, policy): True (the default policy), False, or a policy."""
    if isinstance(recovery, RecoveryPolicy):
        return True, recovery
    if isinstance(recovery, bool):
        return recovery, RecoveryPolicy()
    raise ArgumentTypeError(
        f"recovery must be True, False or a RecoveryPolicy, not {type(recovery).__name__}"
    )


def check_send_timeout(send_timeout: object) -> None:
    if send_timeout is None:
        return
    if isinstance(send_timeout, bool) or not isinstance(send_timeout, int | float):
        raise ArgumentTypeError(f"send_timeout must be None or seconds, not {send_timeout!r}")
    if not send_timeout > 0:  # also refuses NaN
        raise RegistrationError(f"send_timeout must be > 0 seconds, not {send_timeout!r}")


def dependencies(
    depends_on: Iterable[P | str] | P | str,
    lookup: Callable[[str], P],
    kind: type[P],
) -> list[P]:
    """``depends_on`` as processors (of class ``kind``) found by ``lookup`` (the manager's,
    which raises ProcessorNotFoundError), each listed once; a lone name or processor is one
    dependency."""
    single = isinstance(depends_on, str | kind)
    items = [depends_on] if single else cast("Iterable[P | str]", depends_on)
    deps: list[P] = []
    for item in items:
        if isinstance(item, str):
            dep = lookup(item)
        elif isinstance(item, kind):
            dep = item
            try:
                ours = lookup(dep.name) is dep
            except ProcessorNotFoundError:
                ours = False
            if not ours:
                raise RegistrationError(f"{dep.name!r} is not a processor of this manager")
        else:
            raise ArgumentTypeError(
                f"depends_on takes processors or their names, not {type(item).__name__}"
            )
        if dep in deps:
            raise RegistrationError(f"{dep.name!r} is listed twice in depends_on")
        deps.append(dep)
    return deps
