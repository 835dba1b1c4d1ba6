"""Running the real tshark on the captures the tests write, with the shipped Lua dissector.

tshark (Debian package ``tshark``) is optional on a developer's machine: the tests that need it
skip with the reason, except under ``AIOAMP_REQUIRE_TSHARK=1`` (CI), where they fail instead.
The dissector is loaded for each run with ``-X lua_script:PATH``; Debian's Wireshark runs such
scripts also as root (its init.lua sets ``run_user_scripts_when_superuser = true``), and the
``tshark`` fixture checks that the dissector really loaded, so a tshark that refuses Lua is
reported as such rather than as wrong fields.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from rpmsg.capture import install_dissector


def require(reason: str) -> None:
    """Skip with ``reason``, or fail where tshark is required (CI)."""
    if os.environ.get("AIOAMP_REQUIRE_TSHARK") == "1":
        pytest.fail(f"AIOAMP_REQUIRE_TSHARK=1 but {reason}")
    pytest.skip(reason)


class Tshark:
    """tshark with the package's dissector loaded."""

    def __init__(self, exe: str, dissector: Path) -> None:
        self.exe = exe
        self.dissector = dissector

    def run(self, capture: Path, *args: str) -> str:
        out = subprocess.run(
            [self.exe, "-n", "-X", f"lua_script:{self.dissector}", "-r", str(capture), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, f"tshark failed ({out.returncode}): {out.stderr}"
        assert "Lua: Error" not in out.stderr, out.stderr
        return out.stdout

    def fields(self, capture: Path, names: Sequence[str], *args: str) -> list[dict[str, str]]:
        """One dict per packet: each field's value as tshark prints it ('' when absent)."""
        opts = [arg for name in names for arg in ("-e", name)]
        text = self.run(capture, "-T", "fields", "-E", "separator=/t", *opts, *args)
        return [dict(zip(names, line.split("\t"), strict=True)) for line in text.splitlines()]


def find_tshark(plugins: Path, probe: Path) -> Tshark:
    """tshark with the dissector as ``aioamp capture --install-dissector --dir plugins``
    installs it, checked on ``probe`` (a capture of one rpmsg message); skips (or fails in CI)
    with the reason when there is none."""
    exe = shutil.which("tshark")
    if exe is None:
        require("tshark is not installed (Debian: apt-get install tshark)")
    assert exe is not None
    path = install_dissector(plugins)
    out = subprocess.run(
        [
            exe,
            "-n",
            "-X",
            f"lua_script:{path}",
            "-r",
            str(probe),
            "-T",
            "fields",
            "-e",
            "rpmsg.src",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0 or not out.stdout.strip():
        require(f"tshark did not load the Lua dissector: {out.stderr.strip() or out.stdout!r}")
    return Tshark(exe, path)
