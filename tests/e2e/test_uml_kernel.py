"""The User-Mode Linux test kernel (``make kernel``) and its boot harness, platforms.uml.

Tests marked ``kernel`` boot the real kernel; they skip, saying how to build it, when
build/uml/linux (or $AIOAMP_UML_KERNEL) is missing. With AIOAMP_REQUIRE_KERNEL=1 (CI) the
missing kernel is a failure instead. Each boot takes well under a second on an idle machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from platforms.uml import (
    GuestCommandError,
    KernelExitedError,
    KernelNotFoundError,
    KernelTimeoutError,
    UmlArgumentError,
    UmlKernel,
    VirtioDevice,
    find_module,
    insmod_command,
    kernel_faults,
    python_command,
)
from platforms.uml.kernel import group_alive

ROOT = Path(__file__).resolve().parents[2]
FRAGMENT = ROOT / "kernel" / "uml.config"
CHECK_CONFIG = ROOT / "kernel" / "check-config.sh"


def fragment_options() -> dict[str, str]:
    """The options kernel/uml.config asks for, as NAME -> value."""
    options = {}
    for line in FRAGMENT.read_text().splitlines():
        found = re.fullmatch(r"(CONFIG_\w+)=(.*)", line)
        if found:
            options[found.group(1)] = found.group(2)
    return options


# -- the build's option check (no kernel needed) ------------------------------------------------
def run_check(tmp_path: Path, dotconfig: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / ".config"
    config.write_text(dotconfig)
    return subprocess.run(
        [str(CHECK_CONFIG), str(FRAGMENT), str(config)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_config_passes_when_every_option_stuck(tmp_path: Path) -> None:
    full = "".join(f"{k}={v}\n" for k, v in fragment_options().items())
    done = run_check(tmp_path, "# comment\nCONFIG_OTHER=y\n" + full)
    assert done.returncode == 0, done.stderr
    assert f"all {len(fragment_options())} options" in done.stdout


@pytest.mark.parametrize(
    ("name", "final"),
    [
        ("CONFIG_RPMSG_VIRTIO", None),  # dropped: Kconfig found no HAS_DMA
        ("CONFIG_SAMPLE_RPMSG_CLIENT", "y"),  # wrong value
        ("CONFIG_KERNEL_STACK_ORDER", "2"),
    ],
)
def test_check_config_fails_on_an_option_that_did_not_stick(
    tmp_path: Path, name: str, final: str | None
) -> None:
    options = fragment_options()
    assert name in options
    lines = [f"{k}={v}" for k, v in options.items() if k != name]
    lines.append(f"# {name} is not set" if final is None else f"{name}={final}")
    done = run_check(tmp_path, "\n".join(lines) + "\n")
    assert done.returncode == 1
    assert name in done.stderr and "did not stick" in done.stderr


def build_stamp(kernel_dir: Path, tarball: Path) -> str:
    env = {**os.environ, "LINUX_TARBALL": str(tarball)}
    done = subprocess.run(
        [str(kernel_dir / "build.sh"), "--stamp"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_build_stamp_changes_with_every_input(tmp_path: Path) -> None:
    """`make kernel` reuses a build only while its stamp is unchanged: it must cover the
    tarball, the fragment, the patches and the scripts."""
    kernel_dir = tmp_path / "kernel"
    shutil.copytree(ROOT / "kernel", kernel_dir)
    tarball = tmp_path / "linux-source.tar.xz"
    tarball.write_bytes(b"one source")
    stamps = {build_stamp(kernel_dir, tarball)}
    assert build_stamp(kernel_dir, tarball) in stamps  # stable while nothing changes
    patch = sorted((kernel_dir / "patches").glob("*.patch"))[-1]
    for changed in (tarball, kernel_dir / "uml.config", patch, kernel_dir / "check-config.sh"):
        with changed.open("ab") as f:
            f.write(b"\n")
        stamps.add(build_stamp(kernel_dir, tarball))
    (kernel_dir / "patches" / "0003-new.patch").write_text("")
    stamps.add(build_stamp(kernel_dir, tarball))
    assert len(stamps) == 6


# -- the harness's errors (no kernel needed) ----------------------------------------------------
def test_missing_kernel_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOAMP_UML_KERNEL", str(tmp_path / "linux"))
    with pytest.raises(KernelNotFoundError, match="make kernel") as info:
        UmlKernel("true")
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "linux") in str(info.value)
    with pytest.raises(KernelNotFoundError, match="make kernel"):
        find_module("rpmsg_client_sample")


def test_arguments_the_command_line_cannot_carry_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "linux"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    bad: list[dict[str, object]] = [
        {"devices": [tmp_path / "a:b.sock"]},
        {"devices": [tmp_path / "a b.sock"]},
        {"devices": [VirtioDevice(tmp_path / "x.sock", device_id=-1)]},
        {"mem": "lots"},
        {"timeout": 0},
        {"extra_args": ["two words"]},
        {"env": {"NOT-AN-IDENTIFIER": "1"}},
    ]
    for options in bad:
        with pytest.raises(UmlArgumentError) as info:
            UmlKernel("true", kernel=fake, **options)  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)
    with pytest.raises(UmlArgumentError):
        UmlKernel([], kernel=fake)


def test_kernel_faults_skip_only_the_expected_warning() -> None:
    expected_block = [
        "------------[ cut here ]------------",
        "WARNING: CPU: 0 PID: 1 at arch/um/drivers/virt-pci.c:1005 um_pci_init+0xcd/0xd7",
        "No virtio device ID configured for PCI - no PCI support",
        "Call Trace:",
        "---[ end trace 0000000000000000 ]---",
    ]
    other = [
        "BUG: scheduling while atomic: kworker/0:1/12/0x00000002",
        "Call Trace:",
    ]
    assert kernel_faults(expected_block) == []
    assert kernel_faults([*expected_block, "ok", *other]) == other


# -- the real kernel -----------------------------------------------------------------------------
GUEST_REPORT = r"""
echo "version: $(cat /proc/version)"
echo "rpmsg bus: $(ls /sys/bus/rpmsg | tr '\n' ' ')"
echo "rpmsg drivers: $(ls /sys/bus/rpmsg/drivers | tr '\n' ' ')"
echo "cmdline: $(cat /proc/cmdline)"
zcat /proc/config.gz | grep -E '^CONFIG_' | sed 's/^/config: /'
"""


@pytest.mark.kernel
async def test_boot_reports_version_rpmsg_bus_and_config(kernel: Path) -> None:
    async with UmlKernel(GUEST_REPORT, kernel=kernel, timeout=60) as uml:
        run = await uml.wait()
    run.check()  # the command exited 0 and the console holds no BUG/WARNING/panic
    assert run.command_status == 0 and run.returncode == 0
    lines = run.lines
    version = next(line for line in lines if line.startswith("version: "))
    assert "Linux version 6.12." in version
    bus = next(line for line in lines if line.startswith("rpmsg bus: ")).split()[2:]
    assert {"devices", "drivers"} <= set(bus)
    # rpmsg_ns, rpmsg_chrdev (RPMSG_CHAR) and rpmsg_tty are built in; the sample is a module.
    drivers = next(line for line in lines if line.startswith("rpmsg drivers: ")).split()[2:]
    assert {"rpmsg_ns", "rpmsg_chrdev", "rpmsg_tty"} <= set(drivers)
    assert "rpmsg_client_sample" not in drivers
    cmdline = next(line for line in lines if line.startswith("cmdline: "))
    assert "rootfstype=hostfs" in cmdline and "con0=fd:0,fd:1" in cmdline
    config = dict(
        line.removeprefix("config: ").split("=", 1) for line in lines if line.startswith("config: ")
    )
    for name, value in fragment_options().items():
        assert config.get(name) == value, name


@pytest.mark.kernel
async def test_insmod_the_rpmsg_client_sample(kernel: Path) -> None:
    module = find_module("rpmsg_client_sample", kernel)
    script = f"""
{insmod_command(module)}
grep rpmsg_client_sample /proc/modules | cut -d' ' -f1
ls -1 /sys/bus/rpmsg/drivers
"""
    async with UmlKernel(script, kernel=kernel, timeout=60) as uml:
        run = await uml.wait()
    run.check()
    assert "rpmsg_client_sample" in run.lines  # the /proc/modules line
    assert run.lines.count("rpmsg_client_sample") == 2  # and its driver on the rpmsg bus


@pytest.mark.kernel
async def test_the_projects_python_runs_in_the_guest(kernel: Path) -> None:
    code = (
        "import sys, rpmsg.wire; "
        "print('guest python', sys.version.split()[0], sys.prefix); "
        "print('guest kernel', open('/proc/sys/kernel/osrelease').read().strip())"
    )
    async with UmlKernel(python_command(code), kernel=kernel, timeout=60) as uml:
        line = (await uml.wait_for_line(r"^guest python ")).string
        run = await uml.wait()
    run.check()
    assert line == f"guest python {sys.version.split()[0]} {sys.prefix}"
    assert any(line.startswith("guest kernel 6.12.") for line in run.lines)


@pytest.mark.kernel
async def test_command_status_and_faults_are_reported(kernel: Path) -> None:
    async with UmlKernel("echo bye; exit 3", kernel=kernel, timeout=60) as uml:
        run = await uml.wait()
    assert run.command_status == 3
    assert "bye" in run.lines
    with pytest.raises(GuestCommandError, match="status 3"):
        run.check()


@pytest.mark.kernel
async def test_virtio_device_argument_registers_a_virtio_uml_device(
    kernel: Path, tmp_path: Path
) -> None:
    # Nobody listens: the kernel registers the device, fails to connect, boots on.
    socket = tmp_path / "nobody.sock"
    async with UmlKernel("true", kernel=kernel, devices=[socket], timeout=60) as uml:
        await uml.wait_for_line(rf"Registering device virtio-uml\.0 id=7 at {socket}$")
        run = await uml.wait()
    run.check()
    assert f"virtio_uml.device={socket}:7" in uml.args


@pytest.mark.kernel
async def test_deadline_kills_a_hung_guest_and_cleans_up(kernel: Path) -> None:
    uml = UmlKernel("echo hanging; sleep 600", kernel=kernel, timeout=5)
    async with uml:
        await uml.wait_for_line("^hanging$")
        tmp = uml.workdir
        assert (tmp / "uml").is_dir()
        with pytest.raises(KernelTimeoutError, match="did not halt within 5"):
            await uml.wait()
        pid = uml.pid
    assert pid is not None
    assert not group_alive(pid)  # the kernel and its userspace processes are dead
    assert not tmp.exists()  # and with them the temporary directory and uml_dir


@pytest.mark.kernel
async def test_leaving_early_sigkills_the_kernel_and_removes_uml_dir(kernel: Path) -> None:
    async with UmlKernel("sleep 600", kernel=kernel, timeout=60) as uml:
        await uml.wait_for_line(r"^Run .* as init process$")
        tmp = uml.workdir
        umid_dirs = list((tmp / "uml").iterdir())  # the kernel's pid file and mconsole socket
        assert len(umid_dirs) == 1 and (umid_dirs[0] / "pid").is_file()
        pid = uml.pid
    assert pid is not None
    assert not group_alive(pid)
    assert not tmp.exists()


@pytest.mark.kernel
async def test_an_error_in_the_body_propagates_unwrapped_after_cleanup(kernel: Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom) as info:
        async with UmlKernel("sleep 600", kernel=kernel, timeout=60) as uml:
            await uml.wait_for_line(r"^Run .* as init process$")
            tmp, pid = uml.workdir, uml.pid
            raise Boom
    assert type(info.value) is Boom  # not an ExceptionGroup from the console task's group
    assert pid is not None and not group_alive(pid)
    assert not tmp.exists()


@pytest.mark.kernel
async def test_cancelling_the_body_kills_the_kernel(kernel: Path) -> None:
    with anyio.CancelScope() as scope:
        async with UmlKernel("sleep 600", kernel=kernel, timeout=60) as uml:
            await uml.wait_for_line(r"^Run .* as init process$")
            tmp, pid = uml.workdir, uml.pid
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert pid is not None and not group_alive(pid)
    assert not tmp.exists()


@pytest.mark.kernel
async def test_waiting_for_a_line_the_kernel_never_prints(kernel: Path) -> None:
    async with UmlKernel("echo one", kernel=kernel, timeout=60) as uml:
        with pytest.raises(KernelExitedError, match="never printed"):
            await uml.wait_for_line("^never printed$")
        assert (await uml.wait()).check().command_status == 0


# -- the guest's rpmsg char device helpers (platforms.uml.guest_rpmsg; no kernel needed) --------
def test_rpmsg_ioctl_numbers_follow_the_uapi_header() -> None:
    """include/uapi/linux/rpmsg.h: _IOW(0xb5, n, struct rpmsg_endpoint_info) with the 40-byte
    struct, _IO(0xb5, 0x2); the values Linux's headers give on x86."""
    from platforms.uml import guest_rpmsg as g

    assert g.ENDPOINT_INFO.size == 40
    assert g.RPMSG_CREATE_EPT_IOCTL == 0x4028B501
    assert g.RPMSG_DESTROY_EPT_IOCTL == 0xB502
    assert g.RPMSG_CREATE_DEV_IOCTL == 0x4028B503
    assert g.RPMSG_RELEASE_DEV_IOCTL == 0x4028B504
    info = g.endpoint_info("rpmsg-raw", 0x500)
    assert info == b"rpmsg-raw" + bytes(23) + (0x500).to_bytes(4, sys.byteorder) + bytes([0xFF]) * 4
    for name in ("", "x" * 32, "naïve"):
        with pytest.raises(ValueError):
            g.endpoint_info(name)
