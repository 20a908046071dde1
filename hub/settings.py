"""The hub's one settings object: config/hub.toml, then an optional file, then HUB_* variables."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The core's templates and migrations: the checkout's templates/ and migrations/, reached through
# the links hub/templates and hub/migrations, which a wheel carries as files (pyproject.toml).
HUB_TEMPLATES = Path(__file__).resolve().parent / "templates"
HUB_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "hub.toml"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
SERVED_URL_FILE = "served-url"


class OutboxSettings(BaseModel):
    model_config = {"extra": "forbid"}

    batch_size: int = Field(50, ge=1, le=10_000)
    poll_seconds: float = Field(1.0, gt=0, le=3600)
    lease_seconds: int = Field(120, ge=5, le=86_400)
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base_seconds: float = Field(30, ge=0)
    backoff_max_seconds: float = Field(6 * 3600, ge=0)


class ApiSettings(BaseModel):
    model_config = {"extra": "forbid"}

    max_body_bytes: int = Field(1_048_576, ge=1024)
    # File uploads (CSV imports) may be larger than JSON bodies.
    max_upload_bytes: int = Field(50 * 1_048_576, ge=1024)
    max_page_size: int = Field(200, ge=1, le=10_000)


_CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHours(BaseModel):
    """The local hours in which marketing may go out ("09:00" to "21:00"); wraps midnight if start > end."""

    model_config = {"extra": "forbid"}

    start: str = Field(pattern=_CLOCK_TIME)
    end: str = Field(pattern=_CLOCK_TIME)

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info: Any) -> str:
        if info.data.get("start") == value:
            raise ValueError("start and end are the same time: the window would be empty")
        return value


class FrequencyCap(BaseModel):
    """At most `max` marketing deliveries to one contact within `days`."""

    model_config = {"extra": "forbid"}

    max: int = Field(ge=1, le=1000)
    days: float = Field(gt=0, le=366)


class SendingSettings(BaseModel):
    """Sending rules and rate limits for marketing (hub.sending, hub.throttle)."""

    model_config = {"extra": "forbid"}

    # Marketing only to contacts who opted in (a consent record "granted"), not merely never objected.
    require_opt_in: bool = False
    # Deliveries per second across every worker process together; unset means unlimited.
    global_rate_per_second: float | None = Field(None, gt=0, le=100_000)
    rate_per_second: dict[str, float] = Field(default_factory=dict)
    # Bucket size in seconds of rate: how large a burst may go out after a quiet spell.
    burst_seconds: float = Field(1.0, gt=0, le=3600)
    # Default sending window per channel in the recipient's local time; a campaign may override it.
    quiet_hours: dict[str, QuietHours] = Field(
        default_factory=lambda: {"sms": QuietHours(start="09:00", end="21:00")})
    frequency_cap: FrequencyCap | None = None

    @field_validator("rate_per_second")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, rate in value.items():
            if not 0 < rate <= 100_000:
                raise ValueError(f"rate for {channel!r} must be above 0 and at most 100000 per second")
        return value


class DemoSettings(BaseModel):
    """What `hub serve --demo` started beside the hub (it sets these; not for config files)."""

    model_config = {"extra": "forbid"}

    # The Maildir the local SMTP server delivers into: the test mailbox page reads it.
    mailbox: Path | None = None
    # The local Twilio-compatible server: its page, and the SMS it carried.
    twilio_url: str | None = None

    @property
    def active(self) -> bool:
        return self.mailbox is not None or bool(self.twilio_url)


class Settings(BaseSettings):
    """Validated configuration; an invalid value stops start-up with the setting's name."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
    )

    data_dir: Path = Path("data")
    database_url: str = ""
    secret_key: SecretStr | None = None
    # Bearer token a Prometheus scraper sends for /metrics. Unset, /metrics answers only clients on
    # this machine (loopback, not through a proxy) and 404 to everyone else.
    metrics_token: SecretStr | None = Field(None, min_length=16)
    # Where customers and providers reach the hub. Unset, links follow the address `hub serve`
    # listens at (serve_url), and on pages the address the browser asked for.
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    # Set by `hub serve` from --host/--port; not meant for config files.
    serve_url: str = ""
    default_region: str = "RU"
    default_locale: Literal["ru", "en"] = "ru"
    default_timezone: str = "Europe/Moscow"
    embedded_worker: bool = True
    log_json: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Re-read page templates (templates/) when their files change: for working on them. Off, a
    # page does not look at the disk for its templates on every request.
    templates_reload: bool = False
    live_backend: Literal["auto", "memory", "postgres"] = "auto"
    outbox: OutboxSettings = OutboxSettings()
    api: ApiSettings = ApiSettings()
    sending: SendingSettings = SendingSettings()
    demo: DemoSettings = DemoSettings()
    # Each adapter validates its own section against its settings model at start-up.
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Likewise each extension (campaigns, surveys) validates its own `[extensions.<name>]` section.
    extensions: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [DEFAULT_CONFIG_FILE]
        extra = os.environ.get("HUB_CONFIG_FILE")
        if extra:
            files.append(Path(extra))
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=files, deep_merge=True),
        )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        value = value.upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 region phonenumbers knows (e.g. RU, US, DE)")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Moscow)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("use sqlite:///path/to/file.db or postgresql://user@host:port/dbname")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    _public_base_url_set: bool = PrivateAttr(default=False)

    @field_validator("serve_url")
    @classmethod
    def _serve_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _links_follow_the_server(self) -> Settings:
        self._public_base_url_set = "public_base_url" in self.model_fields_set
        if not self._public_base_url_set:
            # Other commands on the same data directory (`hub worker`, `hub campaigns run`) build
            # links for the hub that `hub serve` last started there.
            served = self.serve_url or self._last_served()
            if served:
                self.__dict__["public_base_url"] = served
        return self

    def _last_served(self) -> str:
        try:
            value = (self.data_dir / SERVED_URL_FILE).read_text().strip()
        except OSError:
            return ""
        return value.rstrip("/") if value.startswith(("http://", "https://")) and "\n" not in value else ""

    def remember_served_url(self) -> None:
        """Keep where `hub serve` listens in data_dir, for the other commands run beside it."""
        if self.serve_url:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / SERVED_URL_FILE).write_text(self.serve_url + "\n")

    @property
    def public_base_url_set(self) -> bool:
        """Whether public_base_url was configured (rather than taken from the served address)."""
        return self._public_base_url_set

    def public_url(self, request: Any = None) -> str:
        """The base of public links: public_base_url when configured; else, on a page, the address
        the browser used (the hub may be reached by another name than it listens on); else where
        `hub serve` listens (or the default)."""
        if not self._public_base_url_set and request is not None:
            return str(request.base_url).rstrip("/")
        return self.public_base_url

    @property
    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy needs: psycopg 3 for PostgreSQL, a file in data_dir by default."""
        url = self.database_url
        if not url:
            return f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def is_postgres(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    def signing_key(self) -> bytes:
        """The secret for signed links and sessions; a random one kept in data_dir when unset."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()


class SettingsError(RuntimeError):
    """Raised with a readable message naming every invalid setting."""


def section_problems(exc: ValidationError) -> str:
    """A package section's validation errors on one line ("smtp_port: Input should be …; …")."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's errors into one message that names each setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]) or "settings"
            env = "HUB_" + "__".join(str(part) for part in err["loc"]).upper()
            lines.append(f"  {name} (env {env}): {err['msg']}")
        raise SettingsError("Invalid settings:\n" + "\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
