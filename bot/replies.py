"""What the core says back: platform-neutral replies that adapters render natively."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Button:
    """A button: runs `command` as the clicker, or opens `url`."""

    label: str
    command: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    ephemeral: bool = True
    title: str | None = None
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    error: bool = False
    error_field: str | None = None  # with `error`: the option at fault (`UserError.field`)
