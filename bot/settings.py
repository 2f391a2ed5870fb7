"""Every setting Stagepass reads, in one typed object (environment and `.env`).

`load_settings()` is the only place that reads the environment; a missing or malformed
value becomes a `ConfigError` whose message is one line naming the variable.
`.env.example` lists every key below with a comment.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError


def _env(*names: str) -> Any:
    return AliasChoices(*names)


def secret_of(value: SecretStr | None) -> str | None:
    """A secret setting's value; a blank one (`KEY=` in .env) counts as not set."""
    text = value.get_secret_value().strip() if value is not None else ""
    return text or None


def plain_of(value: str | None) -> str | None:
    """A plain text setting's value; a blank one counts as not set."""
    text = (value or "").strip()
    return text or None


# --- audio room ------------------------------------------------------------------------------


class IceServer(BaseModel):
    """One STUN or TURN server for the audio room's peers, as WebRTC's RTCIceServer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: SecretStr | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _check_schemes(cls, value: list[str]) -> list[str]:
        for url in value:
            if url.split(":", 1)[0] not in {"stun", "stuns", "turn", "turns"}:
                raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        env_ignore_empty=True,  # `KEY=` in .env means "not set", as in .env.example
    )

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(Path("data"), validation_alias=_env("STAGEPASS_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("STAGEPASS_HTTP_HOST"))
    http_port: int = Field(8080, ge=0, le=65535, validation_alias=_env("STAGEPASS_HTTP_PORT"))
    public_url: str | None = Field(None, validation_alias=_env("STAGEPASS_PUBLIC_URL"))
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=_env("STAGEPASS_LOG_LEVEL")
    )
    log_format: Literal["console", "json"] = Field(
        "console", validation_alias=_env("STAGEPASS_LOG_FORMAT")
    )

    # --- secrets -------------------------------------------------------------------------
    api_token: SecretStr | None = Field(None, validation_alias=_env("STAGEPASS_API_TOKEN"))
    signing_key: SecretStr | None = Field(None, validation_alias=_env("STAGEPASS_SIGNING_KEY"))
    # Fernet key(s) for OAuth tokens stored in the database; comma-separated to rotate
    # (the first encrypts, all decrypt). Unset: DATA_DIR/encryption.key, generated once.
    encryption_key: SecretStr | None = Field(
        None, validation_alias=_env("STAGEPASS_ENCRYPTION_KEY")
    )

    # --- money ---------------------------------------------------------------------------
    default_currency: str = Field("usd", validation_alias=_env("STAGEPASS_DEFAULT_CURRENCY"))
    platform_fee_percent: Decimal = Field(
        Decimal("10"), ge=0, le=100, validation_alias=_env("STAGEPASS_PLATFORM_FEE_PERCENT")
    )
    platform_fee_minimum: int = Field(
        0, ge=0, validation_alias=_env("STAGEPASS_PLATFORM_FEE_MINIMUM")
    )
    tip_fee_percent: Decimal = Field(
        Decimal("0"), ge=0, le=100, validation_alias=_env("STAGEPASS_TIP_FEE_PERCENT")
    )
    max_price: int = Field(1000, gt=0, validation_alias=_env("STAGEPASS_MAX_PRICE"))

    # --- limits --------------------------------------------------------------------------
    max_tickets: int = Field(10_000, gt=0, validation_alias=_env("STAGEPASS_MAX_TICKETS"))
    max_per_buyer: int = Field(10, gt=0, validation_alias=_env("STAGEPASS_MAX_PER_BUYER"))
    default_per_buyer: int = Field(1, gt=0, validation_alias=_env("STAGEPASS_DEFAULT_PER_BUYER"))
    max_speakers: int = Field(10, ge=0, validation_alias=_env("STAGEPASS_MAX_SPEAKERS"))
    max_cohosts: int = Field(2, ge=0, validation_alias=_env("STAGEPASS_MAX_COHOSTS"))
    max_title_length: int = Field(100, gt=0, validation_alias=_env("STAGEPASS_MAX_TITLE_LENGTH"))
    max_duration_minutes: int = Field(
        720, gt=0, validation_alias=_env("STAGEPASS_MAX_DURATION_MINUTES")
    )
    default_duration_minutes: int = Field(
        60, gt=0, validation_alias=_env("STAGEPASS_DEFAULT_DURATION_MINUTES")
    )
    hold_minutes: int = Field(30, ge=30, le=1440, validation_alias=_env("STAGEPASS_HOLD_MINUTES"))
    host_rules: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["anyone"], validation_alias=_env("STAGEPASS_HOST_RULES")
    )

    # --- seat hoarding (bot/ratelimits.py, bot/services/claims.py); 0 turns a limit off ---
    claims_per_minute_person: int = Field(
        5, ge=0, validation_alias=_env("STAGEPASS_CLAIMS_PER_MINUTE_PERSON")
    )
    claims_per_minute_community: int = Field(
        120, ge=0, validation_alias=_env("STAGEPASS_CLAIMS_PER_MINUTE_COMMUNITY")
    )
    max_open_holds: int = Field(2, ge=0, validation_alias=_env("STAGEPASS_MAX_OPEN_HOLDS"))
    hold_lapse_cooldown_minutes: int = Field(
        30, ge=0, le=1440, validation_alias=_env("STAGEPASS_HOLD_LAPSE_COOLDOWN_MINUTES")
    )

    # --- billing (Stripe) ----------------------------------------------------------------
    stripe_secret_key: SecretStr | None = Field(None, validation_alias=_env("STRIPE_SECRET_KEY"))
    stripe_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("STRIPE_WEBHOOK_SECRET")
    )
    stripe_api_base: str | None = Field(None, validation_alias=_env("STRIPE_API_BASE"))
    refund_cutoff_hours: int = Field(
        24, ge=0, validation_alias=_env("STAGEPASS_REFUND_CUTOFF_HOURS")
    )
    stripe_connect_country: str | None = Field(
        None, pattern=r"^[A-Za-z]{2}$", validation_alias=_env("STRIPE_CONNECT_COUNTRY")
    )
    billing_reconcile_minutes: int = Field(
        10, ge=0, validation_alias=_env("STAGEPASS_BILLING_RECONCILE_MINUTES")
    )

    # --- scheduling ----------------------------------------------------------------------
    scheduler_enabled: bool = Field(True, validation_alias=_env("STAGEPASS_SCHEDULER_ENABLED"))
    reminder_offsets: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [30, 0], validation_alias=_env("STAGEPASS_REMINDER_OFFSETS")
    )
    host_reminder_offsets: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [30, 0], validation_alias=_env("STAGEPASS_HOST_REMINDER_OFFSETS")
    )
    reminder_grace_seconds: int = Field(
        600, ge=1, validation_alias=_env("STAGEPASS_REMINDER_GRACE_SECONDS")
    )
    slot_horizon_days: int = Field(30, ge=1, validation_alias=_env("STAGEPASS_SLOT_HORIZON_DAYS"))
    slot_lookahead_days: int = Field(
        14, ge=1, validation_alias=_env("STAGEPASS_SLOT_LOOKAHEAD_DAYS")
    )
    max_scheduled_per_host: int = Field(
        10, ge=1, validation_alias=_env("STAGEPASS_MAX_SCHEDULED_PER_HOST")
    )
    auto_cancel_after_hours: int = Field(
        2, ge=1, validation_alias=_env("STAGEPASS_AUTO_CANCEL_AFTER_HOURS")
    )
    end_grace_minutes: int = Field(15, ge=0, validation_alias=_env("STAGEPASS_END_GRACE_MINUTES"))
    hold_sweep_seconds: int = Field(60, ge=1, validation_alias=_env("STAGEPASS_HOLD_SWEEP_SECONDS"))
    scheduler_sweep_seconds: int = Field(
        30, ge=1, validation_alias=_env("STAGEPASS_SCHEDULER_SWEEP_SECONDS")
    )
    scheduler_standby_poll_seconds: float = Field(
        5.0, gt=0, validation_alias=_env("STAGEPASS_SCHEDULER_STANDBY_POLL_SECONDS")
    )

    # --- chat platforms ------------------------------------------------------------------
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )

    # --- Discord adapter -----------------------------------------------------------------
    # Channel settings take one id per server (comma-separated when the bot serves several);
    # the adapter picks, in each server, the channel that belongs to it.
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("DISCORD_GUILD_IDS")
    )
    discord_announce_channel_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("DISCORD_ANNOUNCE_CHANNEL")
    )
    discord_stage_channel_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("DISCORD_STAGE_CHANNEL")
    )
    discord_alert_channel_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("DISCORD_ALERT_CHANNEL")
    )
    discord_moderator_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("DISCORD_MODERATOR_ROLE")
    )
    discord_ticket_only_stage: bool = Field(
        True, validation_alias=_env("DISCORD_TICKET_ONLY_STAGE")
    )
    discord_retry_seconds: int = Field(
        300, ge=5, le=86_400, validation_alias=_env("DISCORD_RETRY_SECONDS")
    )
    # Join the Stage channel when a Space goes live and bridge its audio with the web room.
    discord_voice_bridge: bool = Field(False, validation_alias=_env("DISCORD_VOICE_BRIDGE"))

    # --- Slack adapter -------------------------------------------------------------------
    # One workspace: SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET (above). Many workspaces:
    # SLACK_CLIENT_ID + SLACK_CLIENT_SECRET + SLACK_STATE_SECRET + SLACK_SIGNING_SECRET.
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_client_id: str | None = Field(None, validation_alias=_env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_CLIENT_SECRET")
    )
    slack_state_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_STATE_SECRET"))
    slack_announce_channel: str | None = Field(
        None, validation_alias=_env("SLACK_ANNOUNCE_CHANNEL")
    )
    slack_moderator_group: str | None = Field(None, validation_alias=_env("SLACK_MODERATOR_GROUP"))
    slack_api_base: str | None = Field(None, validation_alias=_env("SLACK_API_BASE"))

    # --- Matrix adapter (adapters/matrix) ------------------------------------------------
    # MATRIX_ACCESS_TOKEN, or MATRIX_PASSWORD for a one-time login (the token is then kept
    # in the data directory).
    matrix_homeserver: str | None = Field(None, validation_alias=_env("MATRIX_HOMESERVER"))
    matrix_user_id: str | None = Field(None, validation_alias=_env("MATRIX_USER_ID"))
    matrix_access_token: SecretStr | None = Field(
        None, validation_alias=_env("MATRIX_ACCESS_TOKEN")
    )
    matrix_password: SecretStr | None = Field(None, validation_alias=_env("MATRIX_PASSWORD"))
    matrix_announce_room: str | None = Field(None, validation_alias=_env("MATRIX_ANNOUNCE_ROOM"))
    matrix_moderator_level: int = Field(
        50, ge=0, le=100, validation_alias=_env("MATRIX_MODERATOR_LEVEL")
    )

    # --- audio room ----------------------------------------------------------------------
    audio_enabled: bool = Field(True, validation_alias=_env("STAGEPASS_AUDIO_ENABLED"))
    ice_servers: Annotated[list[IceServer], NoDecode] = Field(
        default_factory=list, validation_alias=_env("STAGEPASS_ICE_SERVERS")
    )
    recording_dir: Path | None = Field(None, validation_alias=_env("STAGEPASS_RECORDING_DIR"))
    # Replays: holders may play a Space's recordings this many days after its end (a host
    # sets their own with /space edit SPACE replay_days:N); then they are deleted.
    replay_days: int = Field(7, ge=0, le=365, validation_alias=_env("STAGEPASS_REPLAY_DAYS"))
    # Scale-out: with a NATS URL an origin publishes each room's listener mix and edges
    # (STAGEPASS_AUDIO_NODE=edge) relay it to their own listeners. Empty: all in-process.
    audio_nats_url: str | None = Field(None, validation_alias=_env("STAGEPASS_AUDIO_NATS_URL"))
    audio_node: Literal["origin", "edge"] = Field(
        "origin", validation_alias=_env("STAGEPASS_AUDIO_NODE")
    )
    # Leave out offered ICE candidates in private, loopback, link-local and mDNS addresses
    # (a public server should not probe its own network); off suits one LAN or loopback.
    room_deny_private_ice: bool = Field(
        False, validation_alias=_env("STAGEPASS_ROOM_DENY_PRIVATE_ICE")
    )
    # Send the listener mix on the audio fast lane once a listener's ICE and DTLS are up
    # (audio/fastlane.py); false keeps every packet on aiortc's per-sender path.
    room_fast_lane: bool = Field(True, validation_alias=_env("STAGEPASS_ROOM_FAST_LANE"))

    # --- HTTP edges: slow clients and /metrics -------------------------------------------
    # Seconds a client may take to send its request headers / its body; idle keep-alive.
    http_header_timeout: float = Field(
        10.0, gt=0, le=3600, validation_alias=_env("STAGEPASS_HTTP_HEADER_TIMEOUT")
    )
    http_body_timeout: float = Field(
        30.0, gt=0, le=3600, validation_alias=_env("STAGEPASS_HTTP_BODY_TIMEOUT")
    )
    http_keep_alive_timeout: float = Field(
        5.0, gt=0, le=3600, validation_alias=_env("STAGEPASS_HTTP_KEEP_ALIVE_TIMEOUT")
    )
    # host:port for an unauthenticated /metrics of its own (e.g. 127.0.0.1:9100). Unset:
    # /metrics is served with the rest and needs the operator API token.
    metrics_address: str | None = Field(None, validation_alias=_env("STAGEPASS_METRICS_ADDRESS"))

    @field_validator("metrics_address")
    @classmethod
    def _check_metrics_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port, e.g. 127.0.0.1:9100")
        return value.strip()

    @property
    def metrics_bind(self) -> tuple[str, int] | None:
        """STAGEPASS_METRICS_ADDRESS as (host, port); IPv6 hosts in [brackets] unwrapped."""
        if self.metrics_address is None:
            return None
        host, _, port = self.metrics_address.rpartition(":")
        return host.strip("[]"), int(port)

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError(
                    'must be a JSON list like [{"urls": "stun:stun.example.org:3478"}]'
                ) from None
        return value

    @field_validator("audio_nats_url", mode="before")
    @classmethod
    def _blank_nats_url(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("audio_nats_url")
    @classmethod
    def _check_nats_url(cls, value: str | None) -> str | None:
        if value is not None and value.split("://", 1)[0] not in {"nats", "tls", "ws", "wss"}:
            raise ValueError("must be a nats://, tls://, ws:// or wss:// URL")
        return value

    @field_validator("audio_node")
    @classmethod
    def _edge_needs_nats(cls, value: str, info: ValidationInfo) -> str:
        if value == "edge" and not info.data.get("audio_nats_url"):
            raise ValueError("an edge relays rooms over NATS: set STAGEPASS_AUDIO_NATS_URL")
        return value

    @field_validator("recording_dir", mode="before")
    @classmethod
    def _blank_recording_dir(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def resolved_recording_dir(self) -> Path:
        """Where room recordings go: STAGEPASS_RECORDING_DIR, else DATA_DIR/recordings."""
        return self.recording_dir or self.data_dir / "recordings"

    @field_validator(
        "discord_guild_ids",
        "discord_announce_channel_ids",
        "discord_stage_channel_ids",
        "discord_alert_channel_ids",
        mode="before",
    )
    @classmethod
    def _split_discord_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.isdigit() for part in parts):
                raise ValueError("must be Discord ids (numbers), comma-separated")
            return [int(part) for part in parts]
        return value

    @field_validator("discord_moderator_roles", mode="before")
    @classmethod
    def _split_discord_roles(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("stripe_connect_country", mode="before")
    @classmethod
    def _blank_country(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("host_rules", mode="before")
    @classmethod
    def _split_rules(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("host_rules")
    @classmethod
    def _check_rules(cls, value: list[str]) -> list[str]:
        from bot.errors import UserError
        from bot.services.eligibility import parse_rule  # one place for the rule syntax

        for rule in value:
            try:
                parse_rule(rule)
            except UserError as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("reminder_offsets", "host_reminder_offsets", mode="before")
    @classmethod
    def _split_offsets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("reminder_offsets", "host_reminder_offsets")
    @classmethod
    def _check_offsets(cls, value: list[int]) -> list[int]:
        if any(not 0 <= minutes <= 10_080 for minutes in value):
            raise ValueError("reminder offsets are minutes before the start, 0 to 10080")
        return sorted(set(value), reverse=True)

    @field_validator("default_currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        from bot.errors import UserError
        from bot.money import currency

        try:
            return currency(value).code
        except UserError as exc:
            raise ValueError(exc.message) from None

    def secret_values(self) -> set[str]:
        """Every configured secret's value (SecretStr settings, TURN credentials, the
        database password): what the logs mask wherever it appears."""
        values: set[str] = set()
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.add(value.get_secret_value())
        for server in self.ice_servers:
            if server.credential is not None:
                values.add(server.credential.get_secret_value())
        if self.database_url:
            values.add(urlsplit(self.database_url).password or "")
        for value in list(values):  # a list setting (key rotation) is secret part by part
            values.update(part.strip() for part in value.split(","))
        values.discard("")
        return values

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'stagepass.db'}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.http_host in {"0.0.0.0", "::"} else self.http_host
        return f"http://{host}:{self.http_port}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and `.env`; one clear line on any error."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        name = str(loc[0])
        field = Settings.model_fields.get(name)
        alias = field.validation_alias if field else None
        if isinstance(alias, AliasChoices):
            name = str(alias.choices[0])
        value = first.get("input")
        shown = (
            ""
            if value is None or "secret" in name.lower() or "token" in name.lower()
            else (f" (got {value!r})")
        )
        raise ConfigError(f"Setting {name}: {first['msg']}{shown}") from None
