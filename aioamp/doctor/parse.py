"""The kernel's file formats ``aioamp doctor`` reads, parsed without touching a file."""

from __future__ import annotations

import re

_CONFIG_LINE = re.compile(r"(CONFIG_\w+)=(.*)")
_MODULE_SUFFIX = re.compile(r"\.ko(\.(xz|zst|gz))?$")


def parse_kconfig(text: str) -> dict[str, str]:
    """A kernel ``.config`` (``/proc/config.gz`` unpacked, ``/boot/config-R``) as
    ``CONFIG_X -> value``; ``# CONFIG_X is not set`` lines are left out, quotes are kept."""
    out = {}
    for line in text.splitlines():
        found = _CONFIG_LINE.fullmatch(line.strip())
        if found:
            out[found.group(1)] = found.group(2)
    return out


def module_name(path: str) -> str | None:
    """``kernel/drivers/rpmsg/rpmsg_char.ko.xz`` -> ``rpmsg_char`` (dashes become
    underscores, as the kernel names modules); None for a line that is not a module."""
    base = path.strip().rsplit("/", 1)[-1]
    if not _MODULE_SUFFIX.search(base):
        return None
    return _MODULE_SUFFIX.sub("", base).replace("-", "_")


def parse_modules_builtin(text: str) -> frozenset[str]:
    """``/lib/modules/R/modules.builtin``: one module path per line."""
    return frozenset(name for line in text.splitlines() if (name := module_name(line)))


def parse_modules_dep(text: str) -> frozenset[str]:
    """``/lib/modules/R/modules.dep``: ``path: dependency paths`` per line."""
    return frozenset(
        name for line in text.splitlines() if (name := module_name(line.split(":", 1)[0]))
    )


def parse_proc_modules(text: str) -> frozenset[str]:
    """``/proc/modules``: ``name size refcount deps state address`` per line."""
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


def firmware_search_path(custom: str | None, release: str | None) -> list[str]:
    """The directories the kernel's firmware loader tries, in order
    (drivers/base/firmware_loader/main.c: ``fw_path``): the ``firmware_class.path`` parameter
    if set, then the updates and plain directories, each per release and bare."""
    dirs = [custom] if custom else []
    for base in ("/lib/firmware/updates", "/lib/firmware"):
        if release:
            dirs.append(f"{base}/{release}")
        dirs.append(base)
    return dirs
