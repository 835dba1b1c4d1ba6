"""``aioamp demo --platform pandaboard-emu [--firmware PATH]``, run in-process: the PandaBoard
driver on the OMAP4 model with an emulated M3 executing the firmware ELF."""

from __future__ import annotations

import pytest
from emu_support import FIRMWARE, emulator_threads, need_unicorn

need_unicorn()

from aioamp.cli import main  # noqa: E402


def test_the_default_firmware_runs_the_client_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--platform", "pandaboard-emu", "-q", "--count", "20"]) == 0
    out = capsys.readouterr().out
    assert "ipu-m3.elf: entry 0x" in out and "ECHO_REQUEST -> ECHO_REPLY" in out
    assert "[trace] aioamp firmware on OMAP4 IPU (Ducati M3, core 0): up" in out
    assert "[demo] 20 replies in" in out and out.rstrip().endswith("ok")
    assert emulator_threads() == []


def test_firmware_for_another_board_is_an_mmu_fault_not_a_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The virtual board's image reaches for its UART at 0x40001000, which the IPU's MMU (as
    the driver programmed it from that image's table) does not map."""
    firmware = str(FIRMWARE / "vboard-m3.elf")
    assert main(["demo", "--platform", "pandaboard-emu", "-q", "--firmware", firmware]) == 1
    out = capsys.readouterr().out
    assert "MMU fault at device address 0x40001000" in out and "FAILED" in out
    assert emulator_threads() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--firmware", "x.elf"], "--firmware goes with --platform pandaboard-emu"),
        (["--platform", "pandaboard-emu", "--firmware", "/nonexistent.elf"], "no such file"),
        (["--platform", "pandaboard-emu", "--count", "101"], "answers 100 messages"),
    ],
)
def test_bad_arguments_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err
