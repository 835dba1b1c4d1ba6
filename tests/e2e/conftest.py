"""Fixtures of the end-to-end tests: the User-Mode Linux kernel the ``kernel`` tests boot
(test_uml_kernel.py, test_kernel_rpmsg.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from platforms.uml import KernelNotFoundError, find_kernel


@pytest.fixture
def kernel() -> Path:
    """The User-Mode Linux kernel binary (``make kernel``); skips (or fails under
    AIOAMP_REQUIRE_KERNEL=1) when it is missing, saying how to build it."""
    try:
        return find_kernel()
    except KernelNotFoundError as exc:
        if os.environ.get("AIOAMP_REQUIRE_KERNEL") == "1":
            pytest.fail(f"AIOAMP_REQUIRE_KERNEL=1 but {exc}")
        pytest.skip(str(exc))
