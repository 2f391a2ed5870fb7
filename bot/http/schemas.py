"""Request and response bodies of the operator API, and how core objects become them.

Request models check shapes and types only; every business rule (title length, prices,
currencies, capacity, start in the future...) stays in the core services, once. The
schema shows the core's limits all the same (`json_schema_extra`: documented, checked by
the core with its own wording), the deployment's maxima (settings) written into the
OpenAPI document by `document_limits`. Money is
integer minor units plus a lowercase ISO currency code; times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from bot.actors import Actor
from bot.clock import as_utc
from bot.models import (
    Hold,
    HoldStatus,
    Identity,
    Platform,
    Space,
    SpaceStatus,
    Ticket,
    TicketStatus,
)
from bot.settings import Settings

UTCDateTime = Annotated[datetime, AfterValidator(as_utc)]

_ID = r"^[^\s:]+$"  # identity keys are colon-joined: no colons inside a part


#: PostgreSQL stores no NUL character in text: one in a request's text is refused here (a
#: 422 naming the field), not by the database after the work began (a 500).
NUL_MESSAGE = "Text may not contain a NUL character (\\u0000)."


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("nul_character", NUL_MESSAGE)
        return value


class _Out(BaseModel):
    """A response body drawn from a core object: `_of` copies each field from the object's
    attribute of the same name, except those `given`."""

    @classmethod
    def _of(cls, source: object, **given: Any) -> Self:
        copied = {name: getattr(source, name) for name in cls.model_fields if name not in given}
        return cls(**copied, **given)


# --- people -------------------------------------------------------------------------------


class PersonIn(_In):
    """A platform identity: who hosts, or who buys."""

    platform: Platform
    community: str = Field(
        min_length=1,
        max_length=100,
        pattern=_ID,
        description="The guild / workspace id; `local` for the shell.",
    )
    user_id: str = Field(min_length=1, max_length=100, pattern=_ID)
    display_name: str = Field("", max_length=200)

    def actor(self) -> Actor:
        return Actor(self.platform, self.community, self.user_id, self.display_name)


class PersonOut(BaseModel):
    platform: Platform
    community: str
    user_id: str
    display_name: str

    @classmethod
    def of(cls, identity: Identity) -> PersonOut:
        return cls(
            platform=identity.platform,
            community=identity.community_id.partition(":")[2],
            user_id=identity.user_id,
            display_name=identity.display_name,
        )


# --- Spaces -------------------------------------------------------------------------------


class SpaceCreate(_In):
    host: PersonIn
    title: str = Field(json_schema_extra={"minLength": 1})
    starts_at: datetime = Field(
        description="ISO 8601 with a UTC offset, e.g. `2030-05-01T18:00:00+02:00` or `...Z`."
    )
    price_minor: int = Field(
        json_schema_extra={"minimum": 0},
        description="In the currency's minor unit; 0 for a free Space.",
    )
    currency: str = Field(max_length=8, description="ISO 4217 code, e.g. `usd`.")
    capacity: int = Field(
        json_schema_extra={"minimum": 1}, description="How many tickets there are."
    )
    duration_minutes: int | None = Field(None, json_schema_extra={"minimum": 1})
    description: str = Field("", json_schema_extra={"maxLength": 2000})
    per_buyer_limit: int | None = Field(None, json_schema_extra={"minimum": 1})
    manual_start: bool = Field(False, description="Only the host starts it; no auto start.")

    @field_validator("starts_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError(
                "timezone_aware",
                "Give the start time with its UTC offset, e.g. 2030-05-01T18:00:00+02:00",
            )
        return value


class SpaceOut(_Out):
    id: int
    community_id: str = Field(description="`platform:community`, the `community` filter.")
    title: str
    description: str
    status: SpaceStatus
    host: PersonOut
    starts_at: UTCDateTime
    ends_at: UTCDateTime
    duration_minutes: int
    price_minor: int
    currency: str
    capacity: int
    sold: int = Field(description="Valid tickets (paid, or free).")
    held: int = Field(
        description="Seats held for buyers who have not paid yet; they come back if unpaid."
    )
    tickets_left: int = Field(description="`capacity - sold - held`.")
    per_buyer_limit: int
    manual_start: bool
    page_url: str
    created_at: UTCDateTime
    started_at: UTCDateTime | None
    ended_at: UTCDateTime | None
    cancel_reason: str | None

    @classmethod
    def of(cls, space: Space, host: Identity, *, ends_at: datetime, page_url: str) -> SpaceOut:
        assert space.id is not None
        return cls._of(space, host=PersonOut.of(host), ends_at=ends_at, page_url=page_url)


class SpaceList(BaseModel):
    spaces: list[SpaceOut]


class CancelIn(_In):
    reason: str = Field("", max_length=500, description="Shown to ticket holders.")


class CancelOut(BaseModel):
    space: SpaceOut
    tickets_closed: int = Field(description="Tickets refunded (paid) or revoked (free).")
    tickets_failed: int = Field(description="Refunds that failed; retried by billing.")


# --- holds and tickets --------------------------------------------------------------------


class HoldCreate(_In):
    buyer: PersonIn
    quantity: int = Field(1, json_schema_extra={"minimum": 1})
    invite: str | None = Field(
        None,
        max_length=1000,
        description="An invite's token (`/space invite`): invite-only Spaces need one; "
        "each ticket takes one of its uses.",
    )


class TicketOut(_Out):
    id: str
    space_id: int
    status: TicketStatus
    price_minor: int
    currency: str
    issued_at: UTCDateTime
    closed_at: UTCDateTime | None
    token: str | None = Field(description="The signed ticket token; null once closed.")
    join_url: str | None = Field(description="The room link; null once closed.")
    removed: bool = Field(
        default=False,
        description="The holder was removed from the Space's stage: the ticket admits "
        "nobody (no token, no link) until a moderator uses /stage allow.",
    )

    @classmethod
    def of(
        cls, ticket: Ticket, *, token: str | None, join_url: str | None, removed: bool = False
    ) -> TicketOut:
        return cls._of(ticket, token=token, join_url=join_url, removed=removed)


class TicketList(BaseModel):
    tickets: list[TicketOut]


class HoldOut(_Out):
    id: str
    space_id: int
    quantity: int
    amount_minor: int
    currency: str
    status: HoldStatus = Field(
        description="`confirmed` at once for a free Space; `active` "
        "until a paid one is paid or expires."
    )
    expires_at: UTCDateTime
    tickets: list[TicketOut] = Field(description="Issued tickets (free Spaces).")
    checkout_url: str | None = Field(description="Where the buyer pays (paid Spaces).")

    @classmethod
    def of(cls, hold: Hold, tickets: list[TicketOut], checkout_url: str | None) -> HoldOut:
        return cls._of(hold, tickets=tickets, checkout_url=checkout_url)


class VerifyIn(_In):
    token: str = Field(min_length=1, max_length=4096)
    space_id: int | None = Field(None, description="Also require the token to be for this Space.")


class VerifyOut(BaseModel):
    valid: bool
    ticket_id: str = Field(description="`staff-<id>` for host, co-host and moderator passes.")
    space_id: int
    holder: PersonOut
    role: str
    expires_at: UTCDateTime


class PublicKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    public_key: str = Field(description="The raw 32-byte key, base64url without padding.")
    token_format: str = Field(
        "base64url(payload) '.' base64url(signature); payload is JSON "
        '{"v": 1, "t": ticket, "s": space, "h": holder, "r": role, "e": expiry unix seconds}'
    )


def document_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the deployment's maxima into the OpenAPI document `schema` (in place): the
    core refuses more with a 422, and the description says so up front."""
    limits = {
        "SpaceCreate": {
            "title": ("maxLength", settings.max_title_length),
            "capacity": ("maximum", settings.max_tickets),
            "duration_minutes": ("maximum", settings.max_duration_minutes),
            "per_buyer_limit": ("maximum", settings.max_per_buyer),
        },
        "HoldCreate": {"quantity": ("maximum", settings.max_per_buyer)},
    }
    models = schema.get("components", {}).get("schemas", {})
    for model, fields in limits.items():
        properties = models.get(model, {}).get("properties", {})
        for name, (keyword, value) in fields.items():
            if name in properties:
                properties[name][keyword] = value
    return schema
