"""Typed commands: what every adapter's input becomes before the core acts on it."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime

from bot.actors import UserRef
from bot.errors import NUL, NUL_MESSAGE, InvalidInput
from bot.services.spaces import SpaceChanges, SpaceDraft


@dataclass(frozen=True, slots=True)
class CreateSpace:
    draft: SpaceDraft


@dataclass(frozen=True, slots=True)
class ListSpaces:
    pass


@dataclass(frozen=True, slots=True)
class ShowSpace:
    space_id: int


@dataclass(frozen=True, slots=True)
class EditSpace:
    space_id: int
    changes: SpaceChanges


@dataclass(frozen=True, slots=True)
class CancelSpace:
    space_id: int
    reason: str = ""
    confirm: bool = False  # needed to cancel a live Space (it ends; every ticket refunded)


@dataclass(frozen=True, slots=True)
class StartSpace:
    space_id: int
    confirm: bool = False  # needed to start long before the announced time


@dataclass(frozen=True, slots=True)
class EndSpace:
    space_id: int


@dataclass(frozen=True, slots=True)
class ManageSpace:
    """A private link to the Space's desk (its host, co-hosts and moderators)."""

    space_id: int


@dataclass(frozen=True, slots=True)
class SpaceReplays:
    """A Space's recordings for its host: list them, or delete one (`delete`: its number)."""

    space_id: int
    delete: int | None = None


@dataclass(frozen=True, slots=True)
class ListSpaceTickets:
    """The desk's list in chat, a page at a time."""

    space_id: int
    page: int = 1


@dataclass(frozen=True, slots=True)
class SetCohost:
    space_id: int
    user: UserRef
    add: bool


@dataclass(frozen=True, slots=True)
class BuyTicket:
    space_id: int
    quantity: int = 1
    code: str | None = None  # a promo code, upper case


@dataclass(frozen=True, slots=True)
class PromoCommand:
    """`/space promo`: no code lists the codes; `active` alone turns one off or on;
    otherwise a new code (`percent` or `amount`, as typed in the Space's currency)."""

    space_id: int
    code: str | None = None
    active: bool | None = None
    percent: int | None = None
    amount: str | None = None
    uses: int | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ShowTickets:
    space_id: int | None = None


@dataclass(frozen=True, slots=True)
class RefundTicket:
    ticket_id: str


@dataclass(frozen=True, slots=True)
class Tip:
    """A tip for `user` (mentioned where the tipper is), or with `user` None for the host of
    `space_id` wherever they host from: an announcement's Tip button in a linked community."""

    user: UserRef | None
    amount: str
    currency: str | None = None
    message: str = ""
    public: bool = True
    space_id: int | None = None


@dataclass(frozen=True, slots=True)
class SetReminder:
    space_id: int
    on: bool


@dataclass(frozen=True, slots=True)
class StageCommand:
    """`/stage request|hand|promote|demote|mute|unmute|remove|allow|queue`."""

    verb: str
    space_id: int | None = None
    user: UserRef | None = None
    up: bool = True


@dataclass(frozen=True, slots=True)
class SlotCommand:
    verb: str  # add | list | remove
    options: tuple[tuple[str, str], ...] = ()
    target: str | None = None


@dataclass(frozen=True, slots=True)
class PayoutsCommand:
    verb: str  # connect | status


@dataclass(frozen=True, slots=True)
class SetTimezone:
    zone: str | None  # None: show the current one


@dataclass(frozen=True, slots=True)
class CommunityCommand:
    """`/community link [CODE]`, `/community links`, `/community unlink COMMUNITY`."""

    verb: str  # link | links | unlink
    target: str | None = None  # the code to confirm, or the community to unlink


@dataclass(frozen=True, slots=True)
class Help:
    topic: str = ""


@dataclass(frozen=True, slots=True)
class JoinWaitlist:
    """Get in line for a sold-out Space (`leave`: get out of it)."""

    space_id: int
    leave: bool = False


@dataclass(frozen=True, slots=True)
class MakeInvite:
    """An invite link to a Space, good for `uses` tickets."""

    space_id: int
    uses: int


@dataclass(frozen=True, slots=True)
class ListInvites:
    """A Space's invite links: id, uses, expiry, withdrawn or not."""

    space_id: int


@dataclass(frozen=True, slots=True)
class RevokeInvite:
    """Withdraw a Space's invite link, named by (the start of) its id."""

    space_id: int
    invite_id: str


@dataclass(frozen=True, slots=True)
class RedeemInvite:
    """A ticket through an invite link's token."""

    token: str


Command = (
    CreateSpace
    | ListSpaces
    | ShowSpace
    | EditSpace
    | CancelSpace
    | StartSpace
    | EndSpace
    | ManageSpace
    | ListSpaceTickets
    | SpaceReplays
    | SetCohost
    | PromoCommand
    | BuyTicket
    | JoinWaitlist
    | MakeInvite
    | ListInvites
    | RevokeInvite
    | RedeemInvite
    | ShowTickets
    | RefundTicket
    | Tip
    | SetReminder
    | StageCommand
    | SlotCommand
    | PayoutsCommand
    | SetTimezone
    | CommunityCommand
    | Help
)


def refuse_nul(value: object, name: str = "") -> None:
    """`InvalidInput` naming the field (as typed: `title`, `reason`, a `/slot add` option) of
    a command whose text holds a NUL character, which PostgreSQL cannot store: every
    adapter's command passes here before it runs."""
    if isinstance(value, str):
        if NUL in value:
            label = name or "text"
            raise InvalidInput(f"{label}: {NUL_MESSAGE}", field=name or None)
    elif is_dataclass(value) and not isinstance(value, type):
        for item in fields(value):
            refuse_nul(getattr(value, item.name), item.name)
    elif isinstance(value, tuple):
        for item in value:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                refuse_nul(item[1], item[0])  # a `/slot add` option: (name, value)
            else:
                refuse_nul(item, name)
