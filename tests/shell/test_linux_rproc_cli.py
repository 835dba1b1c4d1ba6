"""``aioamp rproc`` on the remoteproc sysfs model: every action, the kernel's refusals as one
line and exit status 1, and the start that would only take another power reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aioamp.cli import build_parser
from aioamp.rproc_cli import run
from platforms.linux.model import Credentials, RemoteprocModel
from remoteproc.states import State


@pytest.fixture
def model(tmp_path: Path) -> RemoteprocModel:
    m = RemoteprocModel(tmp_path)
    m.add("m4", firmware="m4.elf")
    m.add("dsp", state=State.DETACHED)
    (tmp_path / "lib/firmware/m4.elf").write_bytes(b"\x7fELF")
    return m


def rproc(
    model: RemoteprocModel, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    status = run(build_parser().parse_args(["rproc", *argv]), model)
    out, err = capsys.readouterr()
    return status, out, err


def test_list(model: RemoteprocModel, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = rproc(model, capsys, "list")
    assert status == 0
    assert out.splitlines() == [  # columns as wide as their longest cell
        "DEVICE       NAME  STATE     FIRMWARE      RECOVERY  COREDUMP",
        "remoteproc0  m4    offline   m4.elf        enabled   enabled",
        "remoteproc1  dsp   detached  rproc-dsp-fw  enabled   enabled",
    ]
    status, out, _ = rproc(model, capsys, "list", "--json")
    listed = json.loads(out)
    assert [(p["device"], p["name"], p["state"]) for p in listed] == [
        ("remoteproc0", "m4", "offline"),
        ("remoteproc1", "dsp", "detached"),
    ]


def test_start_stop_and_status(model: RemoteprocModel, capsys: pytest.CaptureFixture[str]) -> None:
    assert rproc(model, capsys, "start", "m4")[:2] == (0, "remoteproc0: running\n")
    status, _, err = rproc(model, capsys, "start", "m4")
    assert status == 1 and "another start only takes another kernel power reference" in err
    assert model.processor("m4").power == 1
    status, out, _ = rproc(model, capsys, "status", "remoteproc0", "--json")
    assert json.loads(out)["state"] == "running"
    assert rproc(model, capsys, "stop", "m4")[:2] == (0, "remoteproc0: offline\n")
    status, _, err = rproc(model, capsys, "stop", "m4")
    assert status == 1 and err.startswith("aioamp rproc stop: remoteproc0: writing 'stop'")
    assert "refused while offline" in err


def test_a_forced_second_start_leaves_it_running_after_a_stop(
    model: RemoteprocModel, capsys: pytest.CaptureFixture[str]
) -> None:
    rproc(model, capsys, "start", "m4")
    assert rproc(model, capsys, "start", "m4", "--force")[0] == 0
    status, out, _ = rproc(model, capsys, "stop", "m4")
    assert status == 0 and "other users still hold power references" in out


def test_attach_to_a_detached_processor(
    model: RemoteprocModel, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rproc(model, capsys, "start", "dsp")[:2] == (0, "remoteproc1: attached\n")


def test_firmware(
    model: RemoteprocModel, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert rproc(model, capsys, "firmware", "m4")[1] == "m4.elf\n"
    image = tmp_path / "new.elf"
    image.write_bytes(b"\x7fELF new")
    status, out, _ = rproc(model, capsys, "firmware", "m4", "--install", str(image))
    assert status == 0 and "installed" in out
    name = model.read("/sys/class/remoteproc/remoteproc0/firmware").strip()
    assert name.startswith("aioamp/") and name.endswith("-new.elf")
    assert rproc(model, capsys, "start", "m4")[1] == "remoteproc0: running\n"
    status, _, err = rproc(model, capsys, "firmware", "m4", "other.elf")
    assert status == 1 and "refused while running" in err
    status, _, err = rproc(model, capsys, "firmware", "m4", "../../etc/passwd")
    assert status == 1 and "without '..'" in err


def test_start_with_a_missing_firmware_explains_the_search_path(
    model: RemoteprocModel, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = rproc(model, capsys, "start", "m4", "--firmware", "absent.elf")
    assert status == 1
    assert "could not load firmware 'absent.elf' (ENOENT)" in err and "/lib/firmware" in err


def test_recovery_and_trace(model: RemoteprocModel, capsys: pytest.CaptureFixture[str]) -> None:
    rproc(model, capsys, "start", "m4")
    assert rproc(model, capsys, "recovery", "m4", "disabled")[1] == (
        "remoteproc0: recovery disabled, running\n"
    )
    model.report_crash("m4")
    status, _, err = rproc(model, capsys, "start", "m4")
    assert status == 1 and "crashed: use `recovery recover`" in err
    assert rproc(model, capsys, "recovery", "m4", "recover")[1] == (
        "remoteproc0: recovery disabled, running\n"
    )
    model.set_trace("m4", "hello from m4")
    assert rproc(model, capsys, "trace", "m4")[1] == "hello from m4\n"
    status, _, err = rproc(model, capsys, "trace", "m4", "--index", "3")
    assert status == 1 and "no trace buffer 3" in err


def test_a_missing_permission_is_one_line_with_the_rule(
    model: RemoteprocModel, capsys: pytest.CaptureFixture[str]
) -> None:
    model.user = Credentials(uid=1000, gids=frozenset({1000}))
    status, _, err = rproc(model, capsys, "start", "m4")
    assert status == 1 and len(err.splitlines()) == 1
    assert "/sys/class/remoteproc/remoteproc0/state" in err and "chgrp rproc" in err


def test_an_unknown_processor(model: RemoteprocModel, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = rproc(model, capsys, "status", "gpu")
    assert status == 1 and "remoteproc0 (m4), remoteproc1 (dsp)" in err


def test_the_host_without_remoteproc(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--root`` points the command at a directory laid out like / (here: empty)."""
    from aioamp.cli import main

    assert main(["rproc", "--root", str(tmp_path), "list"]) == 0
    assert "no remote processors" in capsys.readouterr().out
