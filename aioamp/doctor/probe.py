"""Reading a system's facts for ``aioamp doctor``: the only part that touches files.

Every path is read below ``root`` (``/`` for this machine; a fake tree in the tests, a target's
mounted root file system elsewhere), so the same reads run against the kernel's files and
against copies of them. What cannot be read is recorded as missing, never raised.
"""

from __future__ import annotations

import gzip
import os
import pwd
from pathlib import Path

from platforms.pandaboard.hw.errors import UioError
from platforms.pandaboard.hw.uio import uio_maps

from ..version import accel_built
from .checks import MODULES
from .facts import Facts, Firmware, Kernel, Node, Remoteproc, Shm, Uio, User, Vrings
from .parse import (
    firmware_search_path,
    parse_kconfig,
    parse_modules_builtin,
    parse_modules_dep,
    parse_proc_modules,
)


class _Root:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def text(self, path: str) -> str | None:
        try:
            return self.at(path).read_text(errors="replace")
        except (OSError, ValueError):
            return None

    def line(self, path: str) -> str | None:
        text = self.text(path)
        return None if text is None else text.strip()

    def node(self, path: str) -> Node | None:
        try:
            st = self.at(path).stat()
        except OSError:
            return None
        return Node(path, st.st_mode, st.st_uid, st.st_gid)


def current_user() -> User:
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    return User(uid, frozenset({os.getgid(), *os.getgroups()}), name)


def current_vrings() -> Vrings:
    from transports.virtio.vring import ACCELERATED

    forced = os.environ.get("AIOAMP_PURE_PYTHON", "")
    return Vrings(ACCELERATED, accel_built(), forced if forced not in ("", "0") else None)


def _kernel(fs: _Root) -> Kernel:
    release = fs.line("/proc/sys/kernel/osrelease")
    config, source = None, None
    try:
        config = parse_kconfig(gzip.decompress(fs.at("/proc/config.gz").read_bytes()).decode())
        source = "/proc/config.gz"
    except (OSError, EOFError, UnicodeDecodeError):
        text = fs.text(f"/boot/config-{release}") if release else None
        if text is not None:
            config, source = parse_kconfig(text), f"/boot/config-{release}"
    builtin = fs.text(f"/lib/modules/{release}/modules.builtin") if release else None
    dep = fs.text(f"/lib/modules/{release}/modules.dep") if release else None
    return Kernel(
        release=release,
        config=config,
        config_source=source,
        builtin=None if builtin is None else parse_modules_builtin(builtin),
        available=None if dep is None else parse_modules_dep(dep),
        loaded=parse_proc_modules(fs.text("/proc/modules") or ""),
        in_sysfs=frozenset(m for m, *_ in MODULES if fs.at(f"/sys/module/{m}").is_dir()),
    )


def _entries(fs: _Root, path: str) -> list[str]:
    try:
        names = [p.name for p in fs.at(path).iterdir()]
    except OSError:
        return []
    return sorted(names, key=lambda n: (len(n), n))  # remoteproc2 before remoteproc10


def _find_firmware(fs: _Root, name: str | None, dirs: list[str]) -> str | None:
    if not name:
        return None
    for directory in dirs:
        if fs.at(f"{directory}/{name}").is_file():
            return f"{directory}/{name}"
    return None


def _remoteprocs(fs: _Root, search: list[str]) -> tuple[Remoteproc, ...]:
    out = []
    for device in _entries(fs, "/sys/class/remoteproc"):
        base = f"/sys/class/remoteproc/{device}"
        firmware = fs.line(f"{base}/firmware")
        out.append(
            Remoteproc(
                device=device,
                name=fs.line(f"{base}/name"),
                state=fs.line(f"{base}/state"),
                firmware=firmware,
                firmware_path=_find_firmware(fs, firmware, search),
                state_node=fs.node(f"{base}/state"),
            )
        )
    return tuple(out)


def _uio(fs: _Root) -> tuple[Uio, ...]:
    out = []
    for device in _entries(fs, "/sys/class/uio"):
        try:
            maps = tuple(
                (m.addr, m.size, m.name) for m in uio_maps(device, fs.at("/sys/class/uio"))
            )
        except UioError:
            maps = ()
        name = fs.line(f"/sys/class/uio/{device}/name")
        out.append(Uio(device, name, maps, fs.node(f"/dev/{device}")))
    return tuple(out)


def _shm(fs: _Root) -> Shm:
    node = fs.node("/dev/shm")
    if node is None:
        return Shm(None, None, None)
    st = os.statvfs(fs.at("/dev/shm"))
    return Shm(node, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def probe(
    root: str | os.PathLike[str] = "/",
    *,
    user: User | None = None,
    vrings: Vrings | None = None,
) -> Facts:
    """Read the facts of the system whose root file system is at ``root``, judged for
    ``user`` (default: who runs this) with ``vrings`` (default: this interpreter's)."""
    fs = _Root(root)
    kernel = _kernel(fs)
    custom = fs.line("/sys/module/firmware_class/parameters/path")
    search = firmware_search_path(custom, kernel.release)
    rpmsg = [n for n in _entries(fs, "/dev") if n.startswith("rpmsg")]
    return Facts(
        root=str(root),
        user=user or current_user(),
        kernel=kernel,
        remoteprocs=_remoteprocs(fs, search),
        rpmsg_nodes=tuple(node for n in rpmsg if (node := fs.node(f"/dev/{n}")) is not None),
        firmware=Firmware(custom, tuple((d, fs.at(d).is_dir()) for d in search)),
        uio=_uio(fs),
        shm=_shm(fs),
        vrings=vrings or current_vrings(),
    )
