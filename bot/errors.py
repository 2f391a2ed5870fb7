"""The Stagepass exception tree.

    StagepassError                 base of everything we raise on purpose
    ├── ConfigError                a missing or malformed setting (stops start-up)
    └── UserError                  carries a message fit to show in chat
        ├── InvalidInput           bad command text or option value
        ├── NotFound               unknown Space, ticket, user...
        ├── PermissionDenied       the actor may not do this
        ├── Conflict               state forbids it (sold out, already live, ...)
        │   └── SoldOut
        ├── LimitExceeded          a configured limit (speakers, co-hosts, per buyer)
        │   └── RateLimited        too many claims too fast; `retry_after` seconds
        └── NotConfigured          the feature needs setup (billing, slots, ...)

Adapters show `UserError.message` to the user; anything else is a bug, logged with
context, and answered with a generic apology.
"""

from __future__ import annotations

#: PostgreSQL stores no NUL character (U+0000) in text: text from outside that holds one is
#: refused where it enters the core (the API's request bodies, the dispatcher's commands),
#: never left to fail in the database; names a platform gives are cleaned
#: (`bot.models.platform_name`).
NUL = "\x00"
NUL_MESSAGE = "Text may not contain a NUL character (\\u0000)."


class StagepassError(Exception):
    """Base of every error Stagepass raises on purpose."""


class ConfigError(StagepassError):
    """A setting is missing or malformed; `str()` is one line naming it."""


class UserError(StagepassError):
    """An error whose message is written for the person who caused it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(UserError):
    """The command text or one of its values is not acceptable."""


class NotFound(UserError):
    """The thing named does not exist (or is not visible to the actor)."""


class PermissionDenied(UserError):
    """The actor lacks the role this action needs."""


class Conflict(UserError):
    """The current state forbids the action."""


class SoldOut(Conflict):
    """Not enough tickets left for the requested quantity."""


class LimitExceeded(UserError):
    """A configured limit would be exceeded."""


class RateLimited(LimitExceeded):
    """Too many attempts too fast: `retry_after` says in how many seconds to try again."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotConfigured(UserError):
    """The feature exists but is not set up on this deployment yet."""
