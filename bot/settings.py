"""Every setting Stagepass reads, in one typed object (environment and `.env`).

`load_settings()` is the only place that reads the environment; a missing or malformed
value becomes a `ConfigError` whose message is one line naming the variable.
`.env.example` lists every key below with a comment.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
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

    # --- billing (Stripe) ----------------------------------------------------------------
    stripe_secret_key: SecretStr | None = Field(None, validation_alias=_env("STRIPE_SECRET_KEY"))
    stripe_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("STRIPE_WEBHOOK_SECRET")
    )
    stripe_api_base: str | None = Field(None, validation_alias=_env("STRIPE_API_BASE"))
    refund_cutoff_hours: int = Field(
        24, ge=0, validation_alias=_env("STAGEPASS_REFUND_CUTOFF_HOURS")
    )

    # --- chat platforms ------------------------------------------------------------------
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )

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

    @field_validator("default_currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        from bot.errors import UserError
        from bot.money import currency

        try:
            return currency(value).code
        except UserError as exc:
            raise ValueError(exc.message) from None

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
