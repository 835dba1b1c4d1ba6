"""``aioamp doctor`` as a process: on this machine (whatever it finds, it completes and its JSON
matches the schema), against a root given with ``--root``, and inside the User-Mode Linux test
kernel, whose rpmsg_char and rpmsg_ctrl are built in."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from aioamp.doctor import schema
from platforms.uml import KernelNotFoundError, UmlKernel, find_kernel


def doctor(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aioamp", "doctor", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_on_this_machine_completes_and_its_json_validates() -> None:
    done = doctor("--json")
    assert done.returncode in (0, 1), done.stderr  # 1: a check failed here; both are answers
    assert done.stderr == ""
    report = json.loads(done.stdout)
    jsonschema.validate(report, schema())
    assert report["ok"] is (done.returncode == 0)
    checks = {f["check"] for f in report["findings"]}
    assert {"kernel.rpmsg_char", "kernel.rpmsg_ctrl", "dev.shm", "vrings"} <= checks
    text = doctor()
    assert text.returncode == done.returncode
    assert re.fullmatch(
        r"\d+ ok, \d+ info, \d+ warnings?, \d+ problems?", text.stdout.splitlines()[-1]
    )


def test_doctor_root_reads_another_root_file_system(tmp_path: Path) -> None:
    """A target's root file system: its kernel says rpmsg_char is a module; its remote
    processor's firmware is missing, which fails the run (exit status 1)."""
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("6.6.1-target\n")
    (tmp_path / "proc/config.gz").write_bytes(gzip.compress(b"CONFIG_RPMSG_CHAR=m\n"))
    proc = tmp_path / "sys/class/remoteproc/remoteproc0"
    proc.mkdir(parents=True)
    for attr, value in (("name", "m4"), ("state", "offline"), ("firmware", "m4.elf")):
        (proc / attr).write_text(value + "\n")
    (tmp_path / "dev/shm").mkdir(parents=True)
    done = doctor("--root", str(tmp_path), "--json")
    assert done.returncode == 1, done.stdout
    report = json.loads(done.stdout)
    jsonschema.validate(report, schema())
    found = {f["check"]: f for f in report["findings"]}
    assert (report["root"], report["kernel"]) == (str(tmp_path), "6.6.1-target")
    assert found["kernel.rpmsg_char"]["status"] == "info"  # a module, not loaded
    assert found["remoteproc.remoteproc0"]["status"] == "fail"
    assert "m4.elf" in found["remoteproc.remoteproc0"]["fix"]
    text = doctor("--root", str(tmp_path))
    assert text.stdout.startswith(f"aioamp doctor (root {tmp_path}): Linux 6.6.1-target")


@pytest.fixture
def uml() -> Path:
    """The UML kernel binary (``make kernel``); skips when it is missing, or fails under
    AIOAMP_REQUIRE_KERNEL=1 (CI)."""
    try:
        return find_kernel()
    except KernelNotFoundError as exc:
        if os.environ.get("AIOAMP_REQUIRE_KERNEL") == "1":
            pytest.fail(f"AIOAMP_REQUIRE_KERNEL=1 but {exc}")
        pytest.skip(str(exc))


@pytest.mark.kernel
async def test_doctor_inside_the_uml_kernel_finds_rpmsg_char_and_ctrl_built_in(uml: Path) -> None:
    # The guest's root is read-only: the report comes back on the console, on one line.
    one_line = "import json, sys; print('DOCTOR', json.dumps(json.load(sys.stdin)))"
    command = (
        f"{shlex.join([sys.executable, '-m', 'aioamp', 'doctor', '--json'])} | "
        f"{shlex.join([sys.executable, '-c', one_line])}"
    )
    async with UmlKernel(command, kernel=uml, timeout=60) as guest:
        run = await guest.wait()
    run.check()
    (line,) = [line for line in run.lines if line.startswith("DOCTOR ")]
    report = json.loads(line.removeprefix("DOCTOR "))
    jsonschema.validate(report, schema())
    assert report["kernel"].startswith("6.12.")
    found = {f["check"]: f for f in report["findings"]}
    for module in ("rpmsg_char", "rpmsg_ctrl", "virtio_rpmsg_bus", "rpmsg_tty"):
        finding = found[f"kernel.{module}"]
        assert finding["status"] == "ok" and "built in" in finding["summary"], finding
        assert finding["details"]["source"] == "/proc/config.gz"
