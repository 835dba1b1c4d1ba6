"""``aioamp demo --platform uml`` (``make demo-kernel``) as a process: the kernel's own console
lines beside aioamp's, and the ``make kernel`` hint when there is no kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = [sys.executable, "-m", "aioamp", "demo", "--platform", "uml"]
SAMPLE_DEV = "rpmsg_client_sample virtio0.rpmsg-client-sample.-1.1024"


@pytest.mark.kernel
def test_the_demo_shows_the_kernels_console_beside_aioamps(kernel: Path) -> None:
    env = {**os.environ, "AIOAMP_UML_KERNEL": str(kernel)}
    done = subprocess.run(
        [*DEMO, "--count", "10"], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for expected in [
        "[kernel] virtio_rpmsg_bus virtio0: rpmsg host is online",
        "[kernel] virtio_rpmsg_bus virtio0: creating channel rpmsg-client-sample addr 0x400",
        f"[kernel] {SAMPLE_DEV}: new channel: 0x400 -> 0x400!",
        f"[kernel] {SAMPLE_DEV}: incoming msg 10 (src: 0x400)",
        f"[kernel] {SAMPLE_DEV}: goodbye!",
        "[aioamp] announced 'rpmsg-client-sample' at 0x400",
        "[aioamp] echoed message 10 to 0x400: b'hello world!'",
    ]:
        assert expected in lines, expected
    assert not any("incoming msg 11 " in line for line in lines)
    assert lines[-1].startswith("[aioamp] the kernel halted (exit status 0, guest command 0)")
    assert lines[-1].endswith("10/10 messages echoed; ok")


def test_without_a_kernel_the_demo_says_how_to_build_one(tmp_path: Path) -> None:
    env = {**os.environ, "AIOAMP_UML_KERNEL": str(tmp_path / "linux")}
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"no User-Mode Linux kernel at {tmp_path / 'linux'}" in done.stderr
    assert "`make kernel`" in done.stderr
