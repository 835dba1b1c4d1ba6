"""Platform kinds by name, lazily imported, with clear errors."""

from __future__ import annotations

import pytest

from platforms.registry import (
    PlatformUnavailableError,
    create_platform,
    platform_kinds,
    register_platform,
)
from platforms.sim import SimPlatform


def test_sim_by_name() -> None:
    plat = create_platform("sim", name="m3", ddr_size=0x10000)
    assert isinstance(plat, SimPlatform)
    assert plat.name == "m3" and plat.physical.size == 0x10000
    assert "sim" in platform_kinds()


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(PlatformUnavailableError, match=r"unknown platform 'nope'.*sim") as info:
        create_platform("nope")
    assert isinstance(info.value, LookupError)


def test_registered_factory_is_used() -> None:
    made: list[str] = []

    def factory(**options: object) -> SimPlatform:
        made.append(str(options["name"]))
        return SimPlatform(str(options["name"]))

    register_platform("custom-test", factory)
    assert isinstance(create_platform("custom-test", name="x"), SimPlatform)
    assert made == ["x"] and "custom-test" in platform_kinds()
