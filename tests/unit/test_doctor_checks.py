"""``aioamp doctor``'s pure parts: the kernel file formats, permissions, each check's verdict
and fix, and the report against its JSON Schema."""

from __future__ import annotations

import stat

import attrs
import jsonschema  # type: ignore[import-untyped]
import pytest

from aioamp.doctor import schema
from aioamp.doctor.checks import (
    check_module,
    check_remoteproc,
    check_rpmsg_nodes,
    check_shm,
    check_vrings,
    diagnose,
)
from aioamp.doctor.facts import (
    Facts,
    Firmware,
    Kernel,
    Node,
    Remoteproc,
    Shm,
    Status,
    User,
    Vrings,
)
from aioamp.doctor.parse import (
    firmware_search_path,
    module_name,
    parse_kconfig,
    parse_modules_dep,
    parse_proc_modules,
)
from aioamp.doctor.report import to_json, to_text

ALICE = User(1000, frozenset({1000, 20}), "alice")
ROOT = User(0, frozenset({0}), "root")


def test_kconfig_keeps_set_options_only() -> None:
    text = '# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="/lib/firmware"\nCONFIG_D=0x10\n'
    assert parse_kconfig(text) == {
        "CONFIG_A": "y",
        "CONFIG_C": '"/lib/firmware"',
        "CONFIG_D": "0x10",
    }


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("kernel/drivers/rpmsg/rpmsg_char.ko", "rpmsg_char"),
        ("kernel/drivers/rpmsg/rpmsg_ctrl.ko.xz", "rpmsg_ctrl"),
        ("kernel/drivers/rpmsg/virtio_rpmsg_bus.ko.zst", "virtio_rpmsg_bus"),
        ("updates/dkms/some-module.ko.gz", "some_module"),
        ("", None),
        ("kernel/drivers/rpmsg/README", None),
    ],
)
def test_module_names(line: str, name: str | None) -> None:
    assert module_name(line) == name


def test_modules_dep_and_proc_modules() -> None:
    dep = "kernel/a/x.ko.xz: kernel/a/y.ko.xz\nkernel/a/y.ko.xz:\n"
    assert parse_modules_dep(dep) == {"x", "y"}
    assert parse_proc_modules("x 16384 0 - Live 0x0\ny 20480 1 x, Live 0x0\n\n") == {"x", "y"}


def test_firmware_search_path_is_the_kernels_order() -> None:
    assert firmware_search_path("", "6.1") == [
        "/lib/firmware/updates/6.1",
        "/lib/firmware/updates",
        "/lib/firmware/6.1",
        "/lib/firmware",
    ]
    assert firmware_search_path("/opt/fw", None) == [
        "/opt/fw",
        "/lib/firmware/updates",
        "/lib/firmware",
    ]


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "user", "read", "write"),
    [
        (0o600, 1000, 0, ALICE, True, True),  # owner
        (0o400, 1000, 0, ALICE, True, False),
        (0o060, 0, 20, ALICE, True, True),  # group member
        (0o604, 0, 5, ALICE, True, False),  # other
        (0o600, 0, 0, ALICE, False, False),
        (0o000, 5, 5, ROOT, True, True),  # root may do anything
    ],
)
def test_permissions_follow_owner_group_other(
    mode: int, uid: int, gid: int, user: User, read: bool, write: bool
) -> None:
    node = Node("/dev/x", stat.S_IFCHR | mode, uid, gid)
    assert node.allows(user, write=False) is read
    assert node.allows(user, write=True) is write


def kernel(
    config: dict[str, str] | None = None,
    builtin: set[str] | None = None,
    available: set[str] | None = None,
    loaded: set[str] = frozenset(),  # type: ignore[assignment]
) -> Kernel:
    return Kernel(
        release="6.1",
        config=config,
        config_source=None if config is None else "/proc/config.gz",
        builtin=None if builtin is None else frozenset(builtin),
        available=None if available is None else frozenset(available),
        loaded=frozenset(loaded),
        in_sysfs=frozenset(),
    )


@pytest.mark.parametrize(
    ("facts", "needed", "rprocs", "status", "words"),
    [
        (kernel({"CONFIG_RPMSG_CHAR": "y"}), True, False, Status.OK, "built in"),
        (kernel(builtin={"rpmsg_char"}), True, False, Status.OK, "built in"),
        (kernel({}, loaded={"rpmsg_char"}), True, False, Status.OK, "loaded"),
        (kernel({"CONFIG_RPMSG_CHAR": "m"}), True, False, Status.INFO, "not loaded"),
        (kernel(available={"rpmsg_char"}), True, True, Status.INFO, "not loaded"),
        (kernel({}), True, False, Status.WARN, "has no"),
        (kernel({}), True, True, Status.FAIL, "has no"),
        (kernel(builtin=set(), available=set()), True, True, Status.FAIL, "has no"),
        (kernel({}), False, True, Status.INFO, "has no"),
        (kernel(), True, True, Status.INFO, "cannot tell"),
    ],
)
def test_module_verdicts(
    facts: Kernel, needed: bool, rprocs: bool, status: Status, words: str
) -> None:
    found = check_module(
        facts, "rpmsg_char", "CONFIG_RPMSG_CHAR", "x", needed, has_remoteprocs=rprocs
    )
    assert found.status is status and words in found.summary
    assert found.check == "kernel.rpmsg_char"
    if status is not Status.OK:
        assert found.fix


def rproc(state: str, path: str | None = "/lib/firmware/fw.elf", mode: int = 0o644) -> Remoteproc:
    node = Node("/sys/class/remoteproc/remoteproc0/state", stat.S_IFREG | mode, 0, 0)
    return Remoteproc("remoteproc0", "55020000.ipu", state, "fw.elf", path, node)


def test_remoteproc_verdicts() -> None:
    assert check_remoteproc(rproc("running"), ALICE).status is Status.OK
    assert check_remoteproc(rproc("attached"), ALICE).status is Status.OK
    crashed = check_remoteproc(rproc("crashed"), ALICE)
    assert (
        crashed.status is Status.WARN
        and "sudo tee /sys/class/remoteproc/remoteproc0/recovery" in (crashed.fix or "")
    )
    missing = check_remoteproc(rproc("offline", path=None), ALICE)
    assert missing.status is Status.FAIL and "/lib/firmware/fw.elf" in (missing.fix or "")
    offline = check_remoteproc(rproc("offline"), ALICE)
    assert offline.status is Status.INFO and "sudo tee" in (offline.fix or "")
    assert "only its owner may write it" in (offline.fix or "")
    assert "sudo" not in (check_remoteproc(rproc("offline"), ROOT).fix or "")


def facts(**changes: object) -> Facts:
    base = Facts(
        root="/",
        user=ALICE,
        kernel=kernel(
            {"CONFIG_RPMSG_CHAR": "y", "CONFIG_RPMSG_CTRL": "y", "CONFIG_RPMSG_VIRTIO": "y"}
        ),
        remoteprocs=(rproc("offline"),),
        rpmsg_nodes=(Node("/dev/rpmsg0", stat.S_IFCHR | 0o600, 0, 0),),
        firmware=Firmware("", (("/lib/firmware", True),)),
        uio=(),
        shm=Shm(Node("/dev/shm", stat.S_IFDIR | 0o1777, 0, 0), 64 << 20, 60 << 20),
        vrings=Vrings(True, True, None),
    )
    return attrs.evolve(base, **changes)


def test_an_inaccessible_rpmsg_device_says_how_to_get_access() -> None:
    (found,) = check_rpmsg_nodes(facts())
    assert found.status is Status.FAIL and found.check == "dev.rpmsg0"
    assert 'KERNEL=="rpmsg*"' in (found.fix or "") and "usermod -aG" in (found.fix or "")


@pytest.mark.parametrize(
    ("shm", "status"),
    [
        (Shm(None, None, None), Status.FAIL),
        (Shm(Node("/dev/shm", stat.S_IFDIR | 0o755, 0, 0), 64 << 20, 60 << 20), Status.FAIL),
        (Shm(Node("/dev/shm", stat.S_IFDIR | 0o1777, 0, 0), 64 << 20, 4 << 20), Status.FAIL),
        (Shm(Node("/dev/shm", stat.S_IFDIR | 0o1777, 0, 0), 64 << 20, 60 << 20), Status.OK),
    ],
)
def test_shm_verdicts(shm: Shm, status: Status) -> None:
    found = check_shm(shm, ALICE, 9 << 20)
    assert found.status is status
    assert found.fix if status is not Status.OK else found.fix is None


@pytest.mark.parametrize(
    ("vrings", "status"),
    [
        (Vrings(True, True, None), Status.OK),
        (Vrings(False, True, "1"), Status.INFO),
        (Vrings(False, False, None), Status.WARN),
    ],
)
def test_vring_verdicts(vrings: Vrings, status: Status) -> None:
    assert check_vrings(vrings).status is status


def test_the_report_matches_its_schema_and_shows_fixes() -> None:
    info = facts(vrings=Vrings(False, False, None))
    findings = diagnose(info, 9 << 20)
    doc = to_json(info, findings)
    jsonschema.validate(doc, schema())
    assert doc["ok"] is False and doc["counts"]["fail"] == 1  # /dev/rpmsg0
    text = to_text(info, findings)
    assert text.splitlines()[0] == "aioamp doctor: Linux 6.1, user alice (uid 1000)"
    assert "fix: install a C compiler" in text.replace("\n", " ").replace("  ", " ")
    bad = {**doc, "findings": [{**doc["findings"][0], "status": "fail", "fix": None}]}
    with pytest.raises(jsonschema.ValidationError):  # the schema insists on a fix
        jsonschema.validate(bad, schema())
