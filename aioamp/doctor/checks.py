"""The checks of ``aioamp doctor``: facts in, findings out, no file touched.

Each check covers one thing rpmsg and remoteproc users trip over, and every finding that is not
``ok`` says how to fix it. Severity follows what the user can do with aioamp: a missing kernel
rpmsg module fails only where remote processors exist (elsewhere only the Linux-kernel route
needs it), while ``/dev/shm`` fails everywhere (``shm://`` and the simulated core need it).
"""

from __future__ import annotations

from collections.abc import Callable

from .facts import Facts, Finding, Kernel, Remoteproc, Shm, Status, Uio, User, Vrings

#: (module, Kconfig symbol, what it gives, needed): the kernel's rpmsg pieces aioamp's Linux
#: route uses (drivers/rpmsg/Makefile: obj-$(CONFIG_...) += module.o).
MODULES = (
    ("virtio_rpmsg_bus", "CONFIG_RPMSG_VIRTIO", "the rpmsg bus over a remoteproc's virtio", True),
    ("rpmsg_char", "CONFIG_RPMSG_CHAR", "/dev/rpmsgN: endpoints for userspace", True),
    ("rpmsg_ctrl", "CONFIG_RPMSG_CTRL", "/dev/rpmsg_ctrlN: creating endpoints", True),
    ("rpmsg_tty", "CONFIG_RPMSG_TTY", "/dev/ttyRPMSGN: a tty over rpmsg, optional", False),
)
#: The UIO devices of the PandaBoard route (platforms.pandaboard.config.BoardConfig).
PANDABOARD_UIO = {"mailbox": True, "mmu_ipu": False}  # name -> needed
UDEV_RULES = "/etc/udev/rules.d/60-aioamp.rules"


def check_module(
    kernel: Kernel, module: str, symbol: str, what: str, needed: bool, *, has_remoteprocs: bool
) -> Finding:
    check = f"kernel.{module}"
    value = (kernel.config or {}).get(symbol)
    details = {"module": module, "config": symbol, "value": value, "source": kernel.config_source}
    if value == "y" or module in (kernel.builtin or ()):
        return Finding(check, Status.OK, f"{module} is built in ({what})", details=details)
    if module in kernel.loaded or module in kernel.in_sysfs:
        return Finding(check, Status.OK, f"{module} is loaded ({what})", details=details)
    if value == "m" or module in (kernel.available or ()):
        return Finding(
            check,
            Status.INFO,
            f"{module} is a module, not loaded now (the kernel loads it when a remote processor "
            "announces rpmsg)",
            fix=f"to load it now: sudo modprobe {module}",
            details=details,
        )
    known = kernel.config is not None or kernel.builtin is not None or kernel.available is not None
    if not known:
        return Finding(
            check,
            Status.INFO,
            f"cannot tell whether the kernel has {module}: no kernel config (/proc/config.gz, "
            f"/boot/config-{kernel.release}) and no modules.builtin / modules.dep",
            fix="enable CONFIG_IKCONFIG_PROC, or install the kernel's config and module lists",
            details=details,
        )
    status = Status.INFO if not needed else Status.FAIL if has_remoteprocs else Status.WARN
    return Finding(
        check,
        status,
        f"the kernel has no {module} ({what})",
        fix=f"use a kernel built with {symbol}=m or =y (and CONFIG_RPMSG); aioamp's shm:// "
        "and simulated cores do not need it",
        details=details,
    )


def check_kernel(facts: Facts) -> list[Finding]:
    has_remoteprocs = bool(facts.remoteprocs)
    return [
        check_module(facts.kernel, *module, has_remoteprocs=has_remoteprocs) for module in MODULES
    ]


def _sysfs(rproc: Remoteproc, attr: str) -> str:
    return f"/sys/class/remoteproc/{rproc.device}/{attr}"


def check_remoteproc(rproc: Remoteproc, user: User) -> Finding:
    check = f"remoteproc.{rproc.device}"
    label = f"{rproc.device} ({rproc.name or 'no name'})"
    details = {
        "name": rproc.name,
        "state": rproc.state,
        "firmware": rproc.firmware,
        "firmware_path": rproc.firmware_path,
    }
    control = rproc.state_node is not None and rproc.state_node.allows(user, write=True)
    who = "" if control else "sudo "
    state_file = _sysfs(rproc, "state")
    if rproc.state in ("running", "attached"):
        return Finding(
            check, Status.OK, f"{label} is {rproc.state}, firmware {rproc.firmware}", None, details
        )
    if rproc.state == "crashed":
        return Finding(
            check,
            Status.WARN,
            f"{label} crashed (firmware {rproc.firmware})",
            f"see `dmesg | grep -i remoteproc`; recover: echo recover | {who}tee "
            f"{_sysfs(rproc, 'recovery')}",
            details,
        )
    if rproc.firmware and rproc.firmware_path is None:
        return Finding(
            check,
            Status.FAIL,
            f"{label} is {rproc.state}: its firmware {rproc.firmware!r} is not in the search path",
            f"copy it to /lib/firmware/{rproc.firmware}, or name another: echo FILE | {who}tee "
            f"{_sysfs(rproc, 'firmware')}",
            details,
        )
    fix = f"start it: echo start | {who}tee {state_file}"
    if not control and rproc.state_node is not None:
        fix += f" ({rproc.state_node.describe()}: only its owner may write it)"
    return Finding(
        check,
        Status.INFO,
        f"{label} is {rproc.state}, firmware {rproc.firmware} ({rproc.firmware_path})",
        fix,
        details,
    )


def check_remoteprocs(facts: Facts) -> list[Finding]:
    if not facts.remoteprocs:
        return [
            Finding(
                "remoteproc",
                Status.INFO,
                "no remote processors in /sys/class/remoteproc (none on this machine, or its "
                "SoC's remoteproc driver is not loaded)",
                "on a SoC with remote cores: load its remoteproc driver (CONFIG_REMOTEPROC and "
                "the SoC's, e.g. CONFIG_OMAP_REMOTEPROC); aioamp's own remoteproc needs none",
            )
        ]
    return [check_remoteproc(rproc, facts.user) for rproc in facts.remoteprocs]


def _group_fix(kind: str, rule: str) -> str:
    return (
        f'give {kind} to a group: \'{rule}, GROUP="aioamp", MODE="0660"\' in {UDEV_RULES}, '
        "then `sudo groupadd -f aioamp && sudo usermod -aG aioamp $USER`, "
        "`sudo udevadm trigger` and log in again"
    )


def check_rpmsg_nodes(facts: Facts) -> list[Finding]:
    if not facts.rpmsg_nodes:
        return [
            Finding(
                "dev.rpmsg",
                Status.INFO,
                "no /dev/rpmsg* devices (they appear when a remote processor announces rpmsg "
                "and rpmsg_char / rpmsg_ctrl are in the kernel)",
            )
        ]
    out = []
    for node in facts.rpmsg_nodes:
        check = f"dev.{node.path.rsplit('/', 1)[-1]}"
        details = {"mode": f"{node.mode & 0o7777:04o}", "uid": node.uid, "gid": node.gid}
        if node.allows(facts.user, write=True):
            out.append(Finding(check, Status.OK, f"{node.path}: read and write", None, details))
        else:
            out.append(
                Finding(
                    check,
                    Status.FAIL,
                    f"{node.describe()}: {facts.user.name} may not read and write it",
                    _group_fix("/dev/rpmsg*", 'KERNEL=="rpmsg*"'),
                    details,
                )
            )
    return out


def check_firmware(facts: Facts) -> list[Finding]:
    fw = facts.firmware
    order = ", ".join(d for d, _ in fw.dirs)
    details = {"custom_path": fw.custom_path, "search": [d for d, _ in fw.dirs]}
    out = []
    if fw.custom_path:
        exists = dict(fw.dirs).get(fw.custom_path, False)
        out.append(
            Finding(
                "firmware.custom_path",
                Status.OK if exists else Status.WARN,
                f"firmware_class.path is {fw.custom_path}"
                + ("" if exists else ": that directory does not exist"),
                None if exists else f"sudo mkdir -p {fw.custom_path}, or clear the parameter",
                details,
            )
        )
    if not any(exists for _, exists in fw.dirs):
        out.append(
            Finding(
                "firmware.path",
                Status.WARN,
                f"no directory of the firmware search path exists ({order})",
                "sudo mkdir -p /lib/firmware and put remote processors' images there",
                details,
            )
        )
    else:
        out.append(
            Finding("firmware.path", Status.OK, f"firmware search path: {order}", None, details)
        )
    return out


def check_uio_device(uio: Uio, user: User, needed: bool) -> Finding:
    check = f"uio.{uio.name}"
    maps = ", ".join(f"{name or 'map'} {addr:#x}+{size:#x}" for addr, size, name in uio.maps)
    details = {"device": uio.device, "maps": [list(m) for m in uio.maps]}
    where = f"{uio.device} ({uio.name}; maps: {maps or 'none'})"
    if uio.node is None:
        return Finding(
            check,
            Status.WARN,
            f"{where}: no /dev/{uio.device}",
            "is udev (or devtmpfs) running?",
            details,
        )
    if not uio.node.allows(user, write=True):
        status = Status.FAIL if needed else Status.WARN
        fix = _group_fix("the UIO devices", f'SUBSYSTEM=="uio", ATTR{{name}}=="{uio.name}"')
        return Finding(
            check,
            status,
            f"{uio.node.describe()}: {user.name} may not use {where}",
            fix + " (docs/pandaboard.md, section 4)",
            details,
        )
    return Finding(check, Status.OK, f"{where}: /dev/{uio.device} usable", None, details)


def check_uio(facts: Facts) -> list[Finding]:
    named = {uio.name: uio for uio in facts.uio}
    found = [name for name in PANDABOARD_UIO if name in named]
    if not found:
        others = ", ".join(f"{u.device} ({u.name})" for u in facts.uio) or "none"
        return [
            Finding(
                "uio",
                Status.INFO,
                f"no UIO device named 'mailbox' (UIO devices: {others}); only the PandaBoard "
                "route needs it",
                "on a PandaBoard: the device-tree overlay and uio_pdrv_genirq of "
                "docs/pandaboard.md, section 3",
            )
        ]
    return [check_uio_device(named[name], facts.user, PANDABOARD_UIO[name]) for name in found]


def check_shm(shm: Shm, user: User, needed: int) -> Finding:
    details = {"total": shm.total, "free": shm.free, "needed": needed}
    if shm.node is None:
        return Finding(
            "dev.shm",
            Status.FAIL,
            "no /dev/shm: shm://, openamp: and simulated cores in their own process need POSIX "
            "shared memory",
            "sudo mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm",
            details,
        )
    if not shm.node.allows(user, write=True):
        return Finding(
            "dev.shm",
            Status.FAIL,
            f"{shm.node.describe()}: not writable by {user.name}",
            "sudo chmod 1777 /dev/shm",
            details,
        )
    free = shm.free or 0
    text = f"/dev/shm: {free >> 20} MiB free of {(shm.total or 0) >> 20} MiB"
    if free < needed:
        return Finding(
            "dev.shm",
            Status.FAIL,
            f"{text}; a simulated core in its own process and a shm:// link need "
            f"{needed >> 20} MiB",
            "free some (ls -la /dev/shm) or enlarge it: sudo mount -o remount,size=64m "
            "/dev/shm (docker: --shm-size=64m)",
            details,
        )
    return Finding("dev.shm", Status.OK, text, None, details)


def check_vrings(vrings: Vrings) -> Finding:
    details = {"accelerated": vrings.accelerated, "built": vrings.built}
    if vrings.accelerated:
        return Finding(
            "vrings", Status.OK, "the C vring extension is built and active", None, details
        )
    if vrings.built and vrings.forced_pure:
        return Finding(
            "vrings",
            Status.INFO,
            f"the C vring extension is built, but AIOAMP_PURE_PYTHON={vrings.forced_pure} "
            "selects the pure-Python vrings",
            "unset AIOAMP_PURE_PYTHON for the faster rings",
            details,
        )
    return Finding(
        "vrings",
        Status.WARN,
        "the C vring extension is not built: the pure-Python vrings run (3-14x slower rings)",
        "install a C compiler and the Python headers (Debian: apt install gcc python3-dev), "
        "then reinstall aioamp (pip install --force-reinstall --no-deps aioamp, or "
        "pip install -e . in a checkout)",
        details,
    )


CHECKS: tuple[Callable[[Facts], list[Finding]], ...] = (
    check_kernel,
    check_remoteprocs,
    check_rpmsg_nodes,
    check_firmware,
    check_uio,
)


def diagnose(facts: Facts, shm_needed: int) -> list[Finding]:
    """Every finding about ``facts``, in a stable order."""
    findings = [finding for check in CHECKS for finding in check(facts)]
    findings.append(check_shm(facts.shm, facts.user, shm_needed))
    findings.append(check_vrings(facts.vrings))
    return findings
