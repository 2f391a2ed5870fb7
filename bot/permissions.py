"""Who may do what to a Space: one table, one check."""

from __future__ import annotations

import enum

from bot.errors import PermissionDenied


class SpaceRole(enum.StrEnum):
    HOST = "host"
    COHOST = "cohost"
    MODERATOR = "moderator"
    TICKET_HOLDER = "ticket_holder"
    MEMBER = "member"


class Action(enum.StrEnum):
    EDIT = "edit this Space"
    CANCEL = "cancel this Space"
    START = "start this Space"
    END = "end this Space"
    MANAGE_COHOSTS = "change co-hosts"
    RUN_STAGE = "manage the stage"
    REQUEST_TO_SPEAK = "ask to speak"
    REFUND = "refund tickets"
    RECORD = "record this Space"
    MANAGE_PROMOS = "manage promo codes"
    INVITE = "make invite links"
    WITHDRAW_INVITES = "see and withdraw invite links"
    SEE_SALES = "see this Space's tickets and sales"


H, C, M, T = SpaceRole.HOST, SpaceRole.COHOST, SpaceRole.MODERATOR, SpaceRole.TICKET_HOLDER

RULES: dict[Action, frozenset[SpaceRole]] = {
    Action.EDIT: frozenset({H}),
    Action.CANCEL: frozenset({H, M}),
    Action.START: frozenset({H, C, M}),
    Action.END: frozenset({H, C, M}),
    Action.MANAGE_COHOSTS: frozenset({H}),
    Action.RUN_STAGE: frozenset({H, C, M}),
    Action.REQUEST_TO_SPEAK: frozenset({T, C, H}),
    Action.REFUND: frozenset({H}),
    Action.RECORD: frozenset({H, C}),
    Action.MANAGE_PROMOS: frozenset({H, C}),
    Action.INVITE: frozenset({H, C}),
    # A leaked link is a safety matter, as a cancel is: moderators may stop it (not make one).
    Action.WITHDRAW_INVITES: frozenset({H, C, M}),
    Action.SEE_SALES: frozenset({H, C, M}),
}

_NAMES = {H: "the host", C: "co-hosts", M: "moderators", T: "ticket holders"}

STAFF: tuple[SpaceRole, ...] = (H, C, M)
"""The roles that get a staff pass to the room (no ticket behind it), strongest first."""


def staff_role(roles: frozenset[SpaceRole]) -> SpaceRole | None:
    """The role a staff pass names for someone holding ``roles``; None: no staff pass.

    The one rule both the issuer of a pass (`TicketService.staff_pass`) and its checker
    (`TicketService.verify_token`) use, so a pass handed out is a pass the room takes."""
    return next((role for role in STAFF if role in roles), None)


def allowed(action: Action, roles: frozenset[SpaceRole]) -> bool:
    return bool(RULES[action] & roles)


def who_may(action: Action) -> str:
    """`"the host, co-hosts and moderators"`: who RULES let do `action` (refusals, help)."""
    who = [_NAMES[r] for r in SpaceRole if r in RULES[action] and r in _NAMES]
    return who[0] if len(who) == 1 else ", ".join(who[:-1]) + " and " + who[-1]


def require(action: Action, roles: frozenset[SpaceRole]) -> None:
    if allowed(action, roles):
        return
    raise PermissionDenied(f"Only {who_may(action)} can {action.value}.")
