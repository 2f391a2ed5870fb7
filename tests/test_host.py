"""Packages plug into the core through `bot.host`: found by entry point, ordered by what
each declares, given a `Host` to return their part through; the CLI loads no platform."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.errors import ConfigError
from bot.host import Host, Package, discover_commands, discover_packages, install_order
from bot.settings import Settings
from bot.wiring import Stagepass


async def _nothing(host: Host) -> None:
    return None


def _names(packages: list[Package]) -> list[str]:
    return [package.name for package in packages]


def test_order_follows_declared_needs_not_list_position() -> None:
    packages = [
        Package("discord", _nothing, after=("audio",)),
        Package("scheduler", _nothing, requires=("billing",)),
        Package("billing", _nothing),
        Package("audio", _nothing, requires=("billing",)),
    ]
    assert _names(install_order(packages)) == ["billing", "audio", "discord", "scheduler"]
    assert _names(install_order(reversed(packages))) == _names(install_order(packages))


def test_after_is_ignored_when_that_package_is_absent() -> None:
    assert _names(install_order([Package("discord", _nothing, after=("audio",))])) == ["discord"]


def test_a_missing_requirement_a_circle_or_a_twin_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="'discord' requires 'audio'"):
        install_order([Package("discord", _nothing, requires=("audio",))])
    with pytest.raises(ConfigError, match="a, b depend on each other in a circle"):
        install_order(
            [Package("a", _nothing, requires=("b",)), Package("b", _nothing, after=("a",))]
        )
    with pytest.raises(ConfigError, match="two packages are named 'a'"):
        install_order([Package("a", _nothing), Package("a", _nothing)])


def test_the_entry_points_declare_every_package_and_their_order() -> None:
    order = _names(discover_packages())
    assert sorted(order) == ["audio", "billing", "discord", "matrix", "scheduler", "shell", "slack"]
    assert order.index("audio") < order.index("discord")
    assert order.index("billing") < order.index("scheduler")
    assert set(discover_commands()) == {"billing", "discord", "shell"}


def test_no_registered_package_is_an_install_problem_not_an_empty_app() -> None:
    with pytest.raises(ConfigError, match=r"no Stagepass packages are registered.*make env"):
        discover_packages("stagepass.no-such-group")


async def test_a_package_finds_the_service_an_earlier_one_provides(settings: Settings) -> None:
    seen: list[object] = []

    async def rooms(host: Host) -> None:
        host.provide("rooms", ["room 1"])
        host.add_mode("rooms")

    async def bridge(host: Host) -> None:
        seen.append(host.service("rooms", list))
        seen.append(host.service("nobody offers this", list))

    packages = install_order([Package("bridge", bridge, after=("rooms",)), Package("rooms", rooms)])
    app = await Stagepass.build(settings, packages=packages)
    try:
        assert seen == [["room 1"], None]
        assert app.installed == ["rooms", "bridge"] and app.modes == ["rooms"]
        with pytest.raises(ConfigError, match="'rooms' is a list, not a dict"):
            app.service("rooms", dict)
        with pytest.raises(ConfigError, match="two packages offer the service 'rooms'"):
            app.provide("rooms", [])
    finally:
        await app.close()


async def test_build_installs_every_discovered_package(settings: Settings) -> None:
    app = await Stagepass.build(settings)
    try:
        assert app.installed == _names(discover_packages())
        assert {"rooms", "scheduling", "billing", "chat", "console"} <= set(app.services)
    finally:
        await app.close()


def test_importing_the_cli_loads_no_platform_sdk_nor_audio() -> None:
    probe = (
        "import sys, bot.cli; sdks = ('discord', 'slack_bolt', 'aiortc', 'stripe'); "
        "print(sorted(m for m in sdks if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
