"""The remoteproc API boundary: arguments checked at add() with typed errors that change
nothing, one platform per processor, and one exception (never an ExceptionGroup) out of every
public call that runs task groups inside."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import anyio
import pytest
from conftest import echo_round_trip

from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.errors import (
    ArgumentTypeError,
    FirmwareError,
    FirmwareSourceError,
    ProcessorNotFoundError,
    RegistrationError,
    RemoteprocError,
    StateError,
)
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from transports._tasks import first_of

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

ECHO = build_sample_image("rpmsg-echo")


def _refused(
    mgr: RemoteprocManager, error: type[Exception], match: str, **kwargs: Any
) -> pytest.ExceptionInfo[Exception]:
    """``mgr.add(**kwargs)`` raises ``error`` and registers nothing, binds nothing."""
    platform = kwargs.setdefault("platform", SimPlatform("refused"))
    before = mgr.processors
    owner = getattr(platform, "events", None)
    with pytest.raises(error, match=match) as info:
        mgr.add(**kwargs)
    assert isinstance(info.value, RemoteprocError)
    assert mgr.processors == before
    assert getattr(platform, "events", None) is owner
    return info


# -- firmware sources --------------------------------------------------------------------------


@pytest.mark.parametrize("source", [123, 1.5, ["fw.elf"], {"path": "fw.elf"}])
async def test_a_firmware_of_the_wrong_type_is_refused_at_add(source: object) -> None:
    async with RemoteprocManager() as mgr:
        info = _refused(mgr, FirmwareSourceError, "a path .*a callable", firmware=source)
        assert isinstance(info.value, TypeError)
        assert type(source).__name__ in str(info.value)


async def test_setting_a_bad_firmware_later_is_refused_and_keeps_the_old_one() -> None:
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("p"), firmware=ECHO)
        with pytest.raises(FirmwareSourceError):
            rp.firmware = 123  # type: ignore[assignment]
        assert rp.firmware is ECHO
        await rp.boot()
        await echo_round_trip(rp)
        await rp.shutdown()


@pytest.mark.parametrize("kind", ["bytearray", "memoryview", "path", "image", "callable"])
async def test_every_documented_firmware_source_boots(kind: str, tmp_path: Any) -> None:
    buffer = bytearray(ECHO)
    path = tmp_path / "fw.elf"
    path.write_bytes(ECHO)
    source: Any = {
        "bytearray": buffer,
        "memoryview": memoryview(buffer),
        "path": os.fspath(path),
        "image": load_firmware(ECHO),
        "callable": lambda: ECHO,
    }[kind]
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("p"), firmware=source)
        buffer[:4] = b"\0\0\0\0"  # the caller's buffer changes after add(): no effect
        await rp.boot()
        await echo_round_trip(rp)
        await rp.shutdown()


async def test_a_callable_that_returns_no_bytes_fails_the_boot_cleanly() -> None:
    async with RemoteprocManager() as mgr:
        sim = SimPlatform("p")
        rp = mgr.add(sim, firmware=lambda: "fw.elf")
        with pytest.raises(FirmwareSourceError, match="returned str, not bytes"):
            await rp.boot()
        assert (rp.state_name, sim.physical.in_use) == ("offline", 0)


# -- the other arguments of add() ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"platform": object()}, ArgumentTypeError, "must be a PlatformDriver"),
        ({"name": 7}, ArgumentTypeError, "a processor name is a str, not int"),
        ({"name": ""}, RegistrationError, "cannot be empty"),
        ({"recovery": "yes"}, ArgumentTypeError, "True, False or a RecoveryPolicy"),
        ({"recovery": None}, ArgumentTypeError, "True, False or a RecoveryPolicy"),
        ({"send_timeout": math.nan}, RegistrationError, "> 0 seconds"),
        ({"send_timeout": -1}, RegistrationError, "> 0 seconds"),
        ({"send_timeout": "5"}, ArgumentTypeError, "None or seconds"),
    ],
)
async def test_bad_arguments_are_refused_with_typed_errors(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    async with RemoteprocManager() as mgr:
        _refused(mgr, error, match, firmware=ECHO, **kwargs)


async def test_one_platform_instance_cannot_drive_two_processors() -> None:
    sim = SimPlatform("p")
    async with RemoteprocManager() as mgr, RemoteprocManager() as other:
        rp = mgr.add(sim, firmware=ECHO)
        _refused(mgr, RegistrationError, "already belongs to processor 'p'", platform=sim, name="q")
        _refused(other, RegistrationError, "already belongs", platform=sim)
        await rp.boot()  # the first processor is untouched
        await echo_round_trip(rp)
        await rp.shutdown()
        # Once it is removed (or its manager closed), the platform is free again.
        await mgr.remove("p")
        again = other.add(sim, firmware=ECHO)
        await again.boot()
        await echo_round_trip(again)
        await again.shutdown()
    async with RemoteprocManager() as third:
        assert third.add(sim, firmware=ECHO).platform is sim


async def test_a_processor_whose_platform_was_handed_over_cannot_take_it_back() -> None:
    sim = SimPlatform("p")
    async with RemoteprocManager() as first, RemoteprocManager() as second:
        old = first.add(sim, firmware=ECHO)
        await old.boot()
        await old.detach()
        new = second.add(sim)  # the detached core is adopted by another host
        with pytest.raises(StateError, match="taken over"):
            await old.attach()
        with pytest.raises(StateError, match="taken over"):
            await old.boot()
        await new.attach()
        await echo_round_trip(new)
        await new.shutdown()


async def test_dependencies_are_checked() -> None:
    async with RemoteprocManager() as mgr, RemoteprocManager() as other:
        a = mgr.add(SimPlatform("a"), firmware=ECHO)
        foreign = other.add(SimPlatform("f"), firmware=ECHO)
        _refused(mgr, RegistrationError, "'a' is listed twice", depends_on=[a, "a"])
        _refused(
            mgr, ProcessorNotFoundError, r"no processor 'x' \(registered: a\)", depends_on=["x"]
        )
        _refused(
            mgr, RegistrationError, "'f' is not a processor of this manager", depends_on=[foreign]
        )
        _refused(mgr, ArgumentTypeError, "not SimPlatform", depends_on=[SimPlatform("s")])
        await mgr.remove("a")
        _refused(mgr, RegistrationError, "not a processor of this manager", depends_on=[a])
        b = mgr.add(SimPlatform("b"), firmware=ECHO)
        c = mgr.add(SimPlatform("c"), firmware=ECHO, depends_on="b")  # one name, not letters
        assert c.depends_on == (b,)
        with pytest.raises(AttributeError):
            b.depends_on = (c,)  # type: ignore[misc]  # fixed at add(): no cycle can form


# -- one exception out, never a group -------------------------------------------------------


async def test_the_body_exception_leaves_the_manager_as_itself() -> None:
    error = KeyError("from the body")
    with pytest.raises(KeyError) as info:
        async with RemoteprocManager() as mgr:
            rp = mgr.add(SimPlatform("p"), firmware=ECHO)
            await rp.boot()
            raise error
    assert info.value is error
    assert not isinstance(info.value.__context__, BaseExceptionGroup)
    assert rp.state_name == "offline"


async def test_a_background_failure_leaves_the_manager_alone() -> None:
    async def broken() -> None:
        raise RuntimeError("a platform task failed")

    with pytest.raises(RuntimeError, match="a platform task failed"):
        async with RemoteprocManager() as mgr:
            rp = mgr.add(SimPlatform("p"), firmware=ECHO)
            rp.spawn(broken, "broken")
            await anyio.sleep_forever()


async def test_with_several_failures_the_body_wins_and_the_rest_is_noted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise RuntimeError("background")

    with pytest.raises(KeyError) as info:
        async with RemoteprocManager() as mgr:
            rp = mgr.add(SimPlatform("p"), firmware=ECHO)
            rp.spawn(broken, "broken")
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # let it fail first
            raise KeyError("body")
    assert "also raised at the same time: RuntimeError('background')" in info.value.__notes__
    logged = [r.exc_info[1] for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert [type(exc) for exc in logged] == [RuntimeError]  # with its traceback


async def test_a_manager_is_entered_once_at_a_time_and_again_after_it_was_left() -> None:
    mgr = RemoteprocManager()
    async with mgr:
        rp = mgr.add(SimPlatform("p"), firmware=ECHO)
        with pytest.raises(RuntimeError, match="already been entered"):
            await mgr.__aenter__()
        await rp.boot()  # still running
        assert rp.state_name == "running"
    assert (mgr.closed, rp.state_name) == (True, "offline")
    async with mgr:
        assert not mgr.closed
        await rp.boot()
        assert rp.state_name == "running"
    assert (mgr.closed, rp.state_name) == (True, "offline")


async def test_powered_and_boot_with_dependencies_raise_single_errors() -> None:
    async with RemoteprocManager() as mgr:
        bad = mgr.add(SimPlatform("bad"), firmware=b"not an elf")
        top = mgr.add(SimPlatform("top"), firmware=ECHO, depends_on=[bad])
        with pytest.raises(FirmwareError):
            await top.boot()
        assert (bad.state_name, top.state_name) == ("offline", "offline")
        with pytest.raises(FirmwareError):
            async with top.powered():
                pass
        fine = mgr.add(SimPlatform("fine"), firmware=ECHO)
        with pytest.raises(ZeroDivisionError):
            async with fine.powered():
                raise ZeroDivisionError
        assert fine.state_name == "offline"


async def test_first_of_returns_with_the_first_and_raises_alone() -> None:
    done: list[str] = []

    async def quick() -> None:
        done.append("quick")

    async def never() -> None:
        await anyio.sleep_forever()

    async def fails() -> None:
        raise LookupError("only this")

    await first_of(never, quick, never)
    assert done == ["quick"]
    with pytest.raises(LookupError, match="only this") as info:
        await first_of(never, fails)
    assert not isinstance(info.value.__context__, BaseExceptionGroup)
