"""``linux:`` URLs (platforms.linux.url): every form, every option, every refusal."""

from __future__ import annotations

import pytest

from platforms.linux.url import LinuxConfig, linux_config
from transports.errors import TransportURLError


@pytest.mark.parametrize(
    ("url", "ctrl"),
    [
        ("linux:", None),
        ("linux:/dev/rpmsg_ctrl1", "rpmsg_ctrl1"),
        ("linux:rpmsg_ctrl12", "rpmsg_ctrl12"),
        ("linux:///dev/rpmsg_ctrl0", "rpmsg_ctrl0"),
    ],
)
def test_forms(url: str, ctrl: str | None) -> None:
    assert linux_config(url).ctrl == ctrl


def test_defaults_and_options() -> None:
    assert linux_config("linux:") == LinuxConfig(
        ctrl=None, rproc=None, mtu=496, uevents="auto", bind=True, timeout=None
    )
    config = linux_config("linux:?rproc=m4&mtu=1024&uevents=kernel&bind=0&timeout=2.5")
    assert config == LinuxConfig(
        ctrl=None, rproc="m4", mtu=1024, uevents="kernel", bind=False, timeout=2.5
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("linux:/dev/rpmsg3", "control device"),
        ("linux:?speed=1", "unknown option 'speed'"),
        ("linux:?mtu=0", "mtu=0"),
        ("linux:?mtu=65536", "mtu=65536"),
        ("linux:?mtu=x", "not an integer"),
        ("linux:?uevents=all", "uevents='all'"),
        ("linux:?bind=maybe", "not a boolean"),
        ("linux:?timeout=-1", "timeout"),
        ("linux:?rproc=a/b", "rproc="),
        ("linux:?mtu=1&mtu=2", "given twice"),
        ("linux:#frag", "fragment"),
        ("shm://x", "not a linux: URL"),
    ],
)
def test_refusals(url: str, message: str) -> None:
    with pytest.raises(TransportURLError, match=message):
        linux_config(url)
