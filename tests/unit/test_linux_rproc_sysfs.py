"""remoteproc's sysfs values and what a change of them means (platforms.linux.rproc_sysfs)."""

from __future__ import annotations

import pytest

from platforms.linux.rproc_sysfs import (
    SysfsValueError,
    check_coredump,
    check_firmware_name,
    observe,
    parse_recovery,
    parse_state,
    search_path,
)
from remoteproc.states import State

RUNNING, CRASHED, OFFLINE = State.RUNNING, State.CRASHED, State.OFFLINE


@pytest.mark.parametrize("state", list(State))
def test_every_label_state_show_prints(state: State) -> None:
    assert parse_state(f"{state.label}\n") is state


def test_invalid_and_unknown_states() -> None:
    assert parse_state("invalid\n") is None
    with pytest.raises(SysfsValueError):
        parse_state("booting")


def test_recovery_and_coredump() -> None:
    assert parse_recovery("enabled\n") and not parse_recovery("disabled\n")
    with pytest.raises(SysfsValueError):
        parse_recovery("recover")  # written, never read
    assert check_coredump("inline") == "inline"
    with pytest.raises(SysfsValueError, match="disabled, enabled, inline"):
        check_coredump("default")


@pytest.mark.parametrize("name", ["m4.elf", "st/m4/firmware.elf", "aioamp/0123-x.elf"])
def test_good_firmware_names(name: str) -> None:
    assert check_firmware_name(name) == name


@pytest.mark.parametrize("name", ["", "/lib/firmware/x", "a/../b", "..", "x\ny", "x\0"])
def test_firmware_names_the_kernel_would_not_load(name: str) -> None:
    with pytest.raises(SysfsValueError):
        check_firmware_name(name)


def test_the_search_path_is_fw_path() -> None:
    assert search_path("", "6.12.1") == [
        "/lib/firmware/updates/6.12.1",
        "/lib/firmware/updates",
        "/lib/firmware/6.12.1",
        "/lib/firmware",
    ]
    assert search_path("/srv/fw\n", "6.12.1")[0] == "/srv/fw"


def test_observe_reports_crashes_and_recoveries() -> None:
    (crash,) = observe(RUNNING, CRASHED, held=True)
    assert (crash.old, crash.new, crash.cause) == (
        RUNNING,
        CRASHED,
        "crash: the kernel reports it crashed",
    )
    (back,) = observe(CRASHED, RUNNING, held=True)
    assert back.cause == "recovery by the kernel"
    crash, back = observe(RUNNING, RUNNING, held=True, restarted=True)
    assert crash.new is CRASHED and back.new is RUNNING
    assert crash.cause == "crash: seen as its vdevs restarting without a stop"
    crash, _ = observe(RUNNING, RUNNING, held=False, coredump=True)
    assert crash.cause == "crash: seen as a coredump"


def test_observe_reports_other_changes_and_nothing_else() -> None:
    assert observe(RUNNING, RUNNING, held=True) == ()
    assert observe(None, RUNNING, held=True) == ()
    assert observe(RUNNING, None, held=True) == ()
    (t,) = observe(RUNNING, OFFLINE, held=True)
    assert t.cause.startswith("went offline outside aioamp")
    (t,) = observe(OFFLINE, RUNNING, held=False)
    assert t.cause == "changed outside aioamp"
    (t,) = observe(RUNNING, OFFLINE, held=False)
    assert t.cause == "changed outside aioamp"
    assert observe(CRASHED, CRASHED, held=True, restarted=True) == ()
