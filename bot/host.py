"""How a package plugs into Stagepass, without the core naming it.

Each outer package (billing, scheduler, audio, each chat adapter) declares a `Package`
as an entry point in the group ``stagepass.packages``; its CLI sub-commands, if any, are
entry points in the group ``stagepass.commands``, named as the sub-command: a `typer.Typer`
(a group: ``stagepass billing reconcile``) or a function (one command: ``stagepass shell``).
The app (`bot.wiring.Stagepass`) discovers them with importlib.metadata, orders them by
what each declares it needs (`install_order`), and hands each installer a `Host`: the
core, and the places a package returns its part through — HTTP routers, background jobs,
the start-up line's modes, and named services another package may ask for (the audio
package's ``"rooms"``, the shell's ``"console"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from bot.errors import ConfigError

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from bot.commands.handlers import Dispatcher
    from bot.core import Core
    from bot.settings import Settings

PACKAGES = "stagepass.packages"
"""The entry-point group of installers (each a `Package`)."""

COMMANDS = "stagepass.commands"
"""The entry-point group of CLI sub-commands (a `typer.Typer` or a function each)."""

MODELS = "stagepass.models"
"""The entry-point group of the packages' table modules (``billing.models``, ...)."""

T = TypeVar("T")

Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A job that runs while the app serves and returns soon after its event is set."""


class Host(Protocol):
    """What an installer receives: the core, and where it puts its part."""

    @property
    def settings(self) -> Settings: ...

    @property
    def core(self) -> Core: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    def add_router(self, router: APIRouter) -> None:
        """Serve `router` in the HTTP app."""

    def add_background(self, job: Background) -> None:
        """Run `job` while the app serves (a named task, cancelled and awaited on stop)."""

    def add_mode(self, mode: str) -> None:
        """Show `mode` in the start-up line (``discord``, ``billing:stripe``, ...)."""

    def provide(self, name: str, service: object) -> None:
        """Offer `service` under `name` to the packages installed after this one."""

    def service(self, name: str, kind: type[T]) -> T | None:
        """The service offered under `name`, if any; a `ConfigError` if it is not a `kind`."""


@runtime_checkable
class Console(Protocol):
    """The ``"console"`` service: a chat in this terminal for `stagepass run --shell`."""

    async def converse(self, name: str, stop: asyncio.Event) -> None:
        """Read commands typed as `name` until the person leaves or `stop` is set."""


Installer = Callable[[Host], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Package:
    """One plug-in package: its name, its installer and its place in the order.

    `requires`: packages that must be present and are installed first (a missing one
    is a `ConfigError`). `after`: packages installed first when present (an optional
    service, such as audio's rooms for the Discord voice bridge)."""

    name: str
    install: Installer
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


def install_order(packages: Iterable[Package]) -> list[Package]:
    """`packages` so that each comes after what it requires or follows (Kahn's algorithm;
    ties by name, so the order is the same on every machine). A missing requirement, a
    duplicate name or a cycle is a `ConfigError` that names the packages."""
    by_name: dict[str, Package] = {}
    for package in packages:
        if package.name in by_name:
            raise ConfigError(f"two packages are named {package.name!r}")
        by_name[package.name] = package
    before: dict[str, set[str]] = {}
    for name, package in by_name.items():
        missing = [r for r in package.requires if r not in by_name]
        if missing:
            raise ConfigError(
                f"package {name!r} requires {', '.join(map(repr, missing))}, which is not installed"
            )
        before[name] = {d for d in (*package.requires, *package.after) if d in by_name}
    ordered: list[Package] = []
    ready = sorted(name for name, deps in before.items() if not deps)
    while ready:
        name = ready.pop(0)
        ordered.append(by_name[name])
        for other, deps in before.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    ready.append(other)
        ready.sort()
    if len(ordered) < len(by_name):
        stuck = sorted(name for name, deps in before.items() if deps)
        raise ConfigError(f"packages {', '.join(stuck)} depend on each other in a circle")
    return ordered


def discover_packages(group: str = PACKAGES) -> list[Package]:
    """Every installed `Package` (the ``stagepass.packages`` entry points), in install order.
    None at all means the project's metadata is missing or stale: a `ConfigError`."""
    found: list[Package] = []
    for point in entry_points(group=group):
        package = point.load()
        if not isinstance(package, Package):
            raise ConfigError(f"entry point {point.value} ({group}) is not a Package")
        found.append(package)
    if not found:
        raise ConfigError(
            f"no Stagepass packages are registered (entry points {group!r}): "
            "install the project with `make env` (pip install -e .)"
        )
    return install_order(found)


def load_models(group: str = MODELS) -> list[str]:
    """Import every package's table module (the ``stagepass.models`` entry points), so
    the shared `SQLModel.metadata` holds every table (Alembic's env does this); their
    names, sorted. None at all means stale project metadata: a `ConfigError`."""
    points = list(entry_points(group=group))
    for point in points:
        point.load()
    if not points:
        raise ConfigError(
            f"no Stagepass table modules are registered (entry points {group!r}): "
            "install the project with `make env` (pip install -e .)"
        )
    return sorted(point.name for point in points)


def discover_commands() -> dict[str, typer.Typer | Callable[..., Any]]:
    """The CLI sub-commands by name (``stagepass.commands``). Their modules must import
    little: `stagepass --help` loads them all."""
    commands: dict[str, typer.Typer | Callable[..., Any]] = {}
    for point in sorted(entry_points(group=COMMANDS), key=lambda p: p.name):
        commands[point.name] = point.load()
    return commands
