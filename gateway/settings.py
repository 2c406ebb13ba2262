"""Configuration, read once into one typed :class:`Settings`.

Precedence, lowest first: built-in defaults, the TOML file (``--config``), ``PWG_*``
environment variables, command-line flags. Nothing else in the code reads the environment.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.errors import S3Error
from policy.access import parse_policy
from policy.housekeeping import JobSettings
from policy.model import SitePolicy
from policy.oidc_config import OidcIssuer, parse_issuers
from policy.policies import validate_overrides
from policy.rate_limits import RateLimitConfig
from policy.secret_box import SecretBox


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured with.

    ``domains`` enables virtual-hosted-style addressing: a request whose Host is
    ``<bucket>.<domain>`` addresses ``<bucket>``. Root credentials are optional: when absent
    a pair is generated on first start and kept in ``data_dir`` (see policy.credentials).
    """

    data_dir: Path = Path("data")
    backend: str = ""  # a backend URL (translators.config); "" = file://<data_dir>/storage
    host: str = "127.0.0.1"
    port: int = 9000
    region: str = "us-east-1"
    domains: tuple[str, ...] = ()
    root_access_key: str | None = None
    root_secret_key: str | None = field(default=None, repr=False)
    max_clock_skew_seconds: int = 900
    max_object_size: int = 5 * 1024**3
    log_level: str = "info"
    log_format: str = "json"
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    catalog_url: str = ""  # SQLAlchemy URL; "" = sqlite:///<data_dir>/catalog.sqlite3
    policy: SitePolicy = field(default_factory=SitePolicy)  # global defaults ([policy] table)
    scrub_interval_seconds: int = 86400  # background re-hash of every artifact; 0 = off
    scrub_rate_bytes: int = 8 * 1024**2  # the scrub's read rate limit, bytes per second
    max_header_bytes: int = 16 * 1024  # request line + header section of one request
    header_timeout_seconds: int = 60  # for a request line and headers to arrive
    body_timeout_seconds: int = 60  # longest wait for the next piece of a request body
    reservation_lease_seconds: int = 120  # a dead gateway's quota reservations outlive it so long
    # Writes to a local volume (the filesystem backend) are refused (507) below this; 0: off.
    min_free_bytes: int = 256 * 1024**2
    # Seals session tokens and secrets at rest (policy.secret_box); None: kept in data_dir.
    master_key: str | None = field(default=None, repr=False)
    # Master keys rotated out (policy.secret_box): what they sealed or encrypted still opens.
    retired_master_keys: tuple[str, ...] = field(default=(), repr=False)
    # Server-side encryption (policy.encryption): the key ids SSE-KMS accepts, a local key
    # ring standing in for KMS (the first is the default); SSE-C only over TLS unless false
    # (tests over plain HTTP).
    kms_key_ids: tuple[str, ...] = ()
    sse_c_require_tls: bool = True
    # Trusted OIDC issuers ([[oidc.issuers]] tables; PWG_OIDC_ISSUERS, a JSON list of them).
    oidc_issuers: tuple[OidcIssuer, ...] = ()
    # A JSON policy document capping every STS session; None: the token's site roles only.
    sts_role_policy: str | None = None
    sts_max_session_seconds: int = 3600  # longest DurationSeconds AssumeRole* grants
    # Peers (addresses or CIDRs) whose X-Forwarded-For is believed: the client address that
    # policies see (aws:SourceIp) is the last address not among them. Empty: the peer itself.
    trusted_proxies: tuple[str, ...] = ()
    # Rate limits (policy.rate_limits): per principal; 0 = no limit, a burst of 0 is one
    # second's worth. Per-site limits are policy fields ([policy] and site overrides).
    principal_requests_per_second: float = 0.0
    principal_request_burst: int = 0
    principal_bytes_per_second: int = 0
    principal_byte_burst: int = 0
    auth_failure_limit: int = 0  # failed authentications per source address and window; 0 off
    auth_failure_window_seconds: int = 300
    # Shared rate-limit buckets; "" = in this process. Not in repr: it may hold a password.
    redis_url: str = field(default="", repr=False)
    redis_key_prefix: str = "pagewright:rl:"
    # Prometheus metrics (GET /_pagewright/metrics, see docs/metrics.md): also served alone on
    # this HOST:PORT when set; scrapes from other than loopback need this Bearer token.
    metrics_address: str = ""
    metrics_token: str | None = field(default=None, repr=False)
    metrics_max_sites: int = 100  # sites with their own label; the rest sum under "_other"
    # The circuit breaker of a remote backend (policy.circuit_breaker): open after so many
    # consecutive failures, probe again so many seconds later.
    breaker_failures: int = 5
    breaker_reset_seconds: float = 5.0
    # Background jobs (policy.jobs), run by one replica at a time; intervals in seconds, 0 off.
    retention_interval_seconds: float = 3600.0
    reclaim_interval_seconds: float = 30.0  # reservations of dead processes and ended uploads
    sweep_interval_seconds: float = 3600.0  # staging and translator leftovers
    abandoned_upload_interval_seconds: float = 3600.0
    abandoned_upload_seconds: float = 7 * 86400.0  # a multipart upload older is aborted
    lifecycle_interval_seconds: float = 3600.0  # sites' lifecycle rules (policy.lifecycle_job)
    job_lease_seconds: float = 60.0  # a dead replica's job is taken over after this

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def metrics_listener(self) -> tuple[str, int] | None:
        """(host, port) of the separate metrics listener, or None (served on the main one)."""
        return parse_address(self.metrics_address) if self.metrics_address else None

    @property
    def catalog(self) -> str:
        """The catalog database URL: configured, or SQLite in the data dir."""
        return self.catalog_url or f"sqlite:///{(self.data_dir / 'catalog.sqlite3').absolute()}"

    @property
    def backend_url(self) -> str:
        """The configured backend, or the embedded default under the data dir."""
        return self.backend or f"file://{(self.data_dir / 'storage').absolute()}"

    @property
    def jobs(self) -> JobSettings:
        """The background jobs' schedule (policy.housekeeping)."""
        return JobSettings(
            retention_s=self.retention_interval_seconds,
            scrub_s=float(self.scrub_interval_seconds),
            reclaim_reservations_s=self.reclaim_interval_seconds,
            sweep_staging_s=self.sweep_interval_seconds,
            abort_abandoned_uploads_s=self.abandoned_upload_interval_seconds,
            abandoned_upload_s=self.abandoned_upload_seconds,
            lifecycle_s=self.lifecycle_interval_seconds,
        )

    @property
    def rate_limits(self) -> RateLimitConfig:
        """The process-wide rate-limit settings (policy.rate_limits)."""
        return RateLimitConfig(
            principal_requests_per_second=self.principal_requests_per_second,
            principal_request_burst=self.principal_request_burst,
            principal_bytes_per_second=self.principal_bytes_per_second,
            principal_byte_burst=self.principal_byte_burst,
            auth_failure_limit=self.auth_failure_limit,
            auth_failure_window_seconds=float(self.auth_failure_window_seconds),
            redis_url=self.redis_url,
            redis_key_prefix=self.redis_key_prefix,
        )


#: Environment variable -> Settings field.
_ENV: dict[str, str] = {
    "PWG_DATA_DIR": "data_dir",
    "PWG_BACKEND": "backend",
    "PWG_CATALOG_URL": "catalog_url",
    "PWG_ADDRESS": "address",
    "PWG_REGION": "region",
    "PWG_DOMAINS": "domains",
    "PWG_ROOT_ACCESS_KEY": "root_access_key",
    "PWG_ROOT_SECRET_KEY": "root_secret_key",
    "PWG_MAX_CLOCK_SKEW_SECONDS": "max_clock_skew_seconds",
    "PWG_MAX_OBJECT_SIZE": "max_object_size",
    "PWG_LOG_LEVEL": "log_level",
    "PWG_LOG_FORMAT": "log_format",
    "PWG_TLS_CERT_FILE": "tls_cert_file",
    "PWG_TLS_KEY_FILE": "tls_key_file",
    "PWG_SCRUB_INTERVAL_SECONDS": "scrub_interval_seconds",
    "PWG_SCRUB_RATE_BYTES": "scrub_rate_bytes",
    "PWG_MAX_HEADER_BYTES": "max_header_bytes",
    "PWG_HEADER_TIMEOUT_SECONDS": "header_timeout_seconds",
    "PWG_BODY_TIMEOUT_SECONDS": "body_timeout_seconds",
    "PWG_RESERVATION_LEASE_SECONDS": "reservation_lease_seconds",
    "PWG_MIN_FREE_BYTES": "min_free_bytes",
    "PWG_MASTER_KEY": "master_key",
    "PWG_RETIRED_MASTER_KEYS": "retired_master_keys",
    "PWG_KMS_KEY_IDS": "kms_key_ids",
    "PWG_SSE_C_REQUIRE_TLS": "sse_c_require_tls",
    "PWG_OIDC_ISSUERS": "oidc_issuers",
    "PWG_STS_ROLE_POLICY": "sts_role_policy",
    "PWG_STS_MAX_SESSION_SECONDS": "sts_max_session_seconds",
    "PWG_TRUSTED_PROXIES": "trusted_proxies",
    "PWG_PRINCIPAL_REQUESTS_PER_SECOND": "principal_requests_per_second",
    "PWG_PRINCIPAL_REQUEST_BURST": "principal_request_burst",
    "PWG_PRINCIPAL_BYTES_PER_SECOND": "principal_bytes_per_second",
    "PWG_PRINCIPAL_BYTE_BURST": "principal_byte_burst",
    "PWG_AUTH_FAILURE_LIMIT": "auth_failure_limit",
    "PWG_AUTH_FAILURE_WINDOW_SECONDS": "auth_failure_window_seconds",
    "PWG_REDIS_URL": "redis_url",
    "PWG_REDIS_KEY_PREFIX": "redis_key_prefix",
    "PWG_METRICS_ADDRESS": "metrics_address",
    "PWG_METRICS_TOKEN": "metrics_token",
    "PWG_METRICS_MAX_SITES": "metrics_max_sites",
    "PWG_BREAKER_FAILURES": "breaker_failures",
    "PWG_BREAKER_RESET_SECONDS": "breaker_reset_seconds",
    "PWG_RETENTION_INTERVAL_SECONDS": "retention_interval_seconds",
    "PWG_RECLAIM_INTERVAL_SECONDS": "reclaim_interval_seconds",
    "PWG_SWEEP_INTERVAL_SECONDS": "sweep_interval_seconds",
    "PWG_ABANDONED_UPLOAD_INTERVAL_SECONDS": "abandoned_upload_interval_seconds",
    "PWG_ABANDONED_UPLOAD_SECONDS": "abandoned_upload_seconds",
    "PWG_LIFECYCLE_INTERVAL_SECONDS": "lifecycle_interval_seconds",
    "PWG_JOB_LEASE_SECONDS": "job_lease_seconds",
}

#: The bounds of sts_max_session_seconds: STS's own (15 minutes to 12 hours).
STS_SESSION_SECONDS = (900, 43200)


#: Limits that must be at least 1 (0 would refuse every request or lease nothing).
_POSITIVE = (
    "max_header_bytes",
    "header_timeout_seconds",
    "body_timeout_seconds",
    "reservation_lease_seconds",
    "auth_failure_window_seconds",
    "breaker_failures",
)

#: Limits where 0 means "no limit" and a negative number is refused.
_NOT_NEGATIVE = (
    "principal_requests_per_second",
    "principal_request_burst",
    "principal_bytes_per_second",
    "principal_byte_burst",
    "auth_failure_limit",
    "metrics_max_sites",
)

#: Background job intervals: 0 turns the job off.
_JOB_INTERVALS = (
    "retention_interval_seconds",
    "reclaim_interval_seconds",
    "sweep_interval_seconds",
    "abandoned_upload_interval_seconds",
    "lifecycle_interval_seconds",
)


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


_KMS_KEY_ID = re.compile(r"[A-Za-z0-9/_:.-]{1,256}")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names it."""


#: Settings whose value is one of a few words (compared case-insensitively, kept lowercase).
_CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": ("debug", "info", "warning", "error"),
    "log_format": ("json", "text"),
}


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"address {value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _coerce(name: str, value: Any, source: str) -> dict[str, Any]:
    """Turn a raw value for ``name`` into typed Settings field values."""
    if name == "address":
        host, port = parse_address(str(value))
        return {"host": host, "port": port}
    if name == "oidc_issuers":
        return {name: _issuers(value, source)}
    if name == "sts_role_policy":
        return {name: _policy_document(value, source)}
    types = {f.name: f.type for f in fields(Settings)}
    if name not in types:
        raise SettingsError(f"{source}: unknown setting {name!r}")
    kind = str(types[name])
    try:
        if kind in ("Path", "Path | None"):
            return {name: Path(str(value)).expanduser()}
        if kind == "int":
            return {name: int(value)}
        if kind == "float":
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(name)
            return {name: number}
        if kind == "bool":
            if isinstance(value, bool):
                return {name: value}
            word = str(value).strip().lower()
            if word not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(name)
            return {name: word in ("true", "1", "yes")}
        if kind == "tuple[str, ...]":
            items = value if isinstance(value, list) else str(value).split(",")
            return {name: tuple(str(i).strip() for i in items if str(i).strip())}
    except ValueError as exc:
        raise SettingsError(f"{source}: {name} = {value!r} is not valid") from exc
    if name in _CHOICES:
        word = str(value).lower()
        if word not in _CHOICES[name]:
            choices = ", ".join(_CHOICES[name])
            raise SettingsError(f"{source}: {name} = {value!r} is not one of {choices}")
        return {name: word}
    return {name: str(value)}


def _issuers(value: Any, source: str) -> tuple[OidcIssuer, ...]:
    """``[[oidc.issuers]]`` tables, or their JSON text (the environment form)."""
    try:
        tables = json.loads(value) if isinstance(value, str) else value
        return parse_issuers(tables)
    except ValueError as exc:
        raise SettingsError(f"{source}: oidc issuers: {exc}") from exc


def _policy_document(value: Any, source: str) -> str:
    """A session-capping policy document as JSON text, given as text or as a TOML table,
    validated as the access decision will read it (an identity policy)."""
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        parse_policy(text, kind="identity")
    except S3Error as exc:
        raise SettingsError(f"{source}: sts_role_policy: {exc.message}") from exc
    return text


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_sources: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from defaults, ``config_file``, ``environ`` and ``overrides`` (flags).

    ``overrides`` use Settings field names (plus ``address``); None values are ignored. An
    override refused is reported under its name in ``override_sources`` (its flag), else
    as coming from the command line.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            document = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from exc
        table = dict(document.get("gateway", document))
        policy = table.pop("policy", document.get("policy", {}))
        try:
            values["policy"] = SitePolicy().merged(
                validate_overrides({k.replace("-", "_"): v for k, v in policy.items()})
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise SettingsError(f"{config_file}: [policy]: {exc}") from exc
        oidc = table.pop("oidc", document.get("oidc", {}))
        if not isinstance(oidc, dict) or set(oidc) - {"issuers"}:
            raise SettingsError(f"{config_file}: [oidc] holds only [[oidc.issuers]] tables")
        if "issuers" in oidc:
            values.update(_coerce("oidc_issuers", oidc["issuers"], f"{config_file}: [oidc]"))
        for name, value in table.items():
            values.update(_coerce(name.replace("-", "_"), value, str(config_file)))
    for variable, name in _ENV.items():
        if environ is not None and environ.get(variable):
            values.update(_coerce(name, environ[variable], variable))
    for name, value in (overrides or {}).items():
        if value is not None:
            source = (override_sources or {}).get(name, "command line")
            values.update(_coerce(name, value, source))
    settings = replace(Settings(), **values)
    if (settings.root_access_key is None) != (settings.root_secret_key is None):
        raise SettingsError("set both PWG_ROOT_ACCESS_KEY and PWG_ROOT_SECRET_KEY, or neither")
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise SettingsError("set both a TLS certificate and its key, or neither")
    if settings.scrub_interval_seconds < 0:
        raise SettingsError("scrub_interval_seconds must be 0 (off) or positive")
    if settings.scrub_rate_bytes <= 0:
        raise SettingsError("scrub_rate_bytes must be positive")
    for name in _POSITIVE:
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    if settings.master_key is not None:
        try:
            SecretBox.from_key(settings.master_key)
        except ValueError as exc:
            raise SettingsError(f"master_key: {exc}") from None
    for number, retired in enumerate(settings.retired_master_keys, 1):
        try:
            SecretBox.from_key(retired)
        except ValueError as exc:
            raise SettingsError(f"retired_master_keys (key {number}): {exc}") from None
    for key_id in settings.kms_key_ids:
        if not _KMS_KEY_ID.fullmatch(key_id):
            raise SettingsError(
                f"kms_key_ids: {key_id!r} is not a key id (letters, digits and / _ : . -)"
            )
    low, high = STS_SESSION_SECONDS
    if not low <= settings.sts_max_session_seconds <= high:
        raise SettingsError(f"sts_max_session_seconds must be {low}..{high}")
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise SettingsError(f"trusted_proxies: {proxy!r} is not an address or CIDR") from exc
    for name in _NOT_NEGATIVE:
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name} must be 0 (no limit) or positive")
    if settings.redis_url and not settings.redis_url.startswith(_REDIS_SCHEMES):
        raise SettingsError("redis_url must be a redis://, rediss:// or unix:// URL")
    if settings.metrics_address:
        try:
            listener = parse_address(settings.metrics_address)
        except SettingsError as exc:
            raise SettingsError(f"metrics_address: {exc}") from None
        if listener == (settings.host, settings.port):
            raise SettingsError("metrics_address must differ from the gateway's address")
    if settings.breaker_reset_seconds <= 0:
        raise SettingsError("breaker_reset_seconds must be positive")
    for name in _JOB_INTERVALS:
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name} must be 0 (off) or positive")
    for name in ("abandoned_upload_seconds", "job_lease_seconds"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name} must be positive")
    if settings.min_free_bytes < 0:
        raise SettingsError("min_free_bytes must be 0 (no floor) or a number of bytes")
    return settings
