"""The node's settings: one typed object, read once at start.

Sources, later ones winning: defaults that work for one node on a laptop, the
node's ``node.toml`` in its home folder (written by ``exchange-node init``), then
``EXCHANGE_*`` environment variables. The key passphrase is only ever read from
the environment, never from a file. Every setting is documented in the README.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from exchange_node.errors import ConfigurationError
from exchange_node.protocol._claims import check_entity_id
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.wire import ORGANIZATION_KINDS

CONFIG_FILE = "node.toml"
DEFAULT_HOME = "~/.exchange-node"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Everything a node process needs to know, from its home folder and environment."""

    home: Path
    name: str = ""
    kind: str = "other"
    url: str = ""
    languages: tuple[str, ...] = ("en",)
    database_url: str = ""
    key_passphrase: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8040
    #: How long a new key is published before it signs, and an old one kept after.
    key_overlap_seconds: int = 172_800
    #: How often the worker refreshes each peer's entity configuration.
    peer_refresh_seconds: int = 3_600
    #: How often each trusted peer's capacity document is polled (with jitter of a tenth).
    capacity_poll_seconds: int = 300
    #: How many peers one directory sync round polls at the same time.
    sync_concurrency: int = 8
    #: Serve the public services (and only those) on the open HSDS API under /hsds.
    public_hsds: bool = False
    #: How often the in-process worker runs a round.
    worker_interval_seconds: int = 30
    #: How often the worker looks for outbox messages that are due (a new one wakes it sooner).
    delivery_poll_seconds: float = 1.0
    #: How many messages the worker delivers at the same time.
    delivery_concurrency: int = 8
    #: After this long without a receipt a message is marked failed (SPEC 7.5).
    delivery_deadline_seconds: int = 86_400
    #: How long a worker's claim on an outbox message lasts (never less than two request
    #: timeouts): the messages of a worker that died are attempted again after it.
    delivery_lease_seconds: int = 60
    #: Backoff of a failing peer: random(0, min(max, base * 2^failures)) seconds (SPEC 7.5).
    delivery_backoff_seconds: int = 10
    delivery_max_backoff_seconds: int = 3_600
    #: Days after a referral closes (or its consent expires) before its personal data is purged.
    retention_days: int = 90
    #: Timeout of one request to a peer.
    http_timeout_seconds: float = 10.0
    #: Lifetime of OAuth 2 access tokens issued to integration clients.
    access_token_seconds: int = 3_600
    #: Let this node connect to peers on private or loopback addresses (off: SSRF guard).
    allow_private_peers: bool = False
    #: Reverse proxies in front of the node that set X-Forwarded-For (0: none trusted).
    trusted_proxies: int = 0
    log_level: str = "INFO"
    limits: Limits = DEFAULT_LIMITS

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def keys_path(self) -> Path:
        return self.home / "keys.jwk"

    @property
    def data_key_path(self) -> Path:
        """The AES-256-GCM keys that seal personal data at rest (:mod:`exchange_node.data_key`)."""
        return self.home / "data.key"

    @property
    def is_initialized(self) -> bool:
        return self.config_path.is_file()


#: Environment variable -> (setting, parser). EXCHANGE_HOME is read by :func:`load_settings`.
_ENVIRONMENT: dict[str, tuple[str, type]] = {
    "EXCHANGE_DATABASE_URL": ("database_url", str),
    "EXCHANGE_KEY_PASSPHRASE": ("key_passphrase", str),
    "EXCHANGE_HOST": ("host", str),
    "EXCHANGE_PORT": ("port", int),
    "EXCHANGE_URL": ("url", str),
    "EXCHANGE_KEY_OVERLAP_SECONDS": ("key_overlap_seconds", int),
    "EXCHANGE_PEER_REFRESH_SECONDS": ("peer_refresh_seconds", int),
    "EXCHANGE_CAPACITY_POLL_SECONDS": ("capacity_poll_seconds", int),
    "EXCHANGE_SYNC_CONCURRENCY": ("sync_concurrency", int),
    "EXCHANGE_PUBLIC_HSDS": ("public_hsds", bool),
    "EXCHANGE_WORKER_INTERVAL_SECONDS": ("worker_interval_seconds", int),
    "EXCHANGE_DELIVERY_POLL_SECONDS": ("delivery_poll_seconds", float),
    "EXCHANGE_DELIVERY_CONCURRENCY": ("delivery_concurrency", int),
    "EXCHANGE_DELIVERY_DEADLINE_SECONDS": ("delivery_deadline_seconds", int),
    "EXCHANGE_DELIVERY_LEASE_SECONDS": ("delivery_lease_seconds", int),
    "EXCHANGE_DELIVERY_BACKOFF_SECONDS": ("delivery_backoff_seconds", int),
    "EXCHANGE_DELIVERY_MAX_BACKOFF_SECONDS": ("delivery_max_backoff_seconds", int),
    "EXCHANGE_RETENTION_DAYS": ("retention_days", int),
    "EXCHANGE_HTTP_TIMEOUT_SECONDS": ("http_timeout_seconds", float),
    "EXCHANGE_ACCESS_TOKEN_SECONDS": ("access_token_seconds", int),
    "EXCHANGE_ALLOW_PRIVATE_PEERS": ("allow_private_peers", bool),
    "EXCHANGE_TRUSTED_PROXIES": ("trusted_proxies", int),
    "EXCHANGE_LOG_LEVEL": ("log_level", str),
}
#: Members of node.toml and the JSON types they hold. Secrets are not allowed there.
_FILE_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "kind": str,
    "url": str,
    "languages": list,
    "database_url": str,
    "host": str,
    "port": int,
    "key_overlap_seconds": int,
    "peer_refresh_seconds": int,
    "capacity_poll_seconds": int,
    "sync_concurrency": int,
    "public_hsds": bool,
    "worker_interval_seconds": int,
    "delivery_poll_seconds": (int, float),
    "delivery_concurrency": int,
    "delivery_deadline_seconds": int,
    "delivery_lease_seconds": int,
    "delivery_backoff_seconds": int,
    "delivery_max_backoff_seconds": int,
    "retention_days": int,
    "http_timeout_seconds": (int, float),
    "access_token_seconds": int,
    "allow_private_peers": bool,
    "trusted_proxies": int,
    "log_level": str,
}


def resolve_home(home: str | Path | None, environ: Mapping[str, str]) -> Path:
    """The home folder: ``--home``, else ``EXCHANGE_HOME``, else ``~/.exchange-node``."""
    chosen = home or environ.get("EXCHANGE_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


def load_settings(
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the settings of the node in ``home`` (defaults, node.toml, environment, overrides).

    Raises:
        ConfigurationError: a file or variable that cannot be read, or a bad value.
    """
    environ = os.environ if environ is None else environ
    settings = Settings(home=resolve_home(home, environ))
    values: dict[str, Any] = {}
    if settings.config_path.is_file():
        values.update(_read_config(settings.config_path))
    for variable, (name, parse) in _ENVIRONMENT.items():
        if environ.get(variable, "") != "":  # set to an empty string counts as unset
            values[name] = _parse(variable, environ[variable], parse)
    values.update(overrides)
    if "languages" in values:
        values["languages"] = tuple(values["languages"])
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    settings = replace(settings, **values)
    if not settings.database_url:
        settings = replace(settings, database_url=f"sqlite:///{settings.home / 'node.db'}")
    _check(settings)
    return settings


#: What ``init`` writes to node.toml: the node's identity. Anything that came from the
#: environment (a database URL with its password, say) stays there and is not copied.
IDENTITY = ("name", "kind", "url", "languages")


def write_config(settings: Settings, names: tuple[str, ...] = IDENTITY) -> None:
    """Write node.toml (mode 0600) with the settings ``names``."""
    lines = ["# exchange-node settings; EXCHANGE_* environment variables override them.\n"]
    lines += [f"{name} = {_toml_value(getattr(settings, name))}\n" for name in names]
    settings.home.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(settings.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("".join(lines))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read {path}: {e}") from e
    unknown = sorted(set(data) - set(_FILE_TYPES))
    if unknown:
        raise ConfigurationError(f"{path}: unknown settings {', '.join(unknown)}")
    for name, value in data.items():
        expected = _FILE_TYPES[name]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise ConfigurationError(f"{path}: {name} has the wrong type")
    return data


def _parse(variable: str, raw: str, parse: type) -> Any:
    if parse is bool:
        if raw.strip().lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigurationError(f"{variable}={raw!r}: use 1 or 0")
        return raw.strip().lower() in ("1", "true", "yes")
    try:
        return parse(raw)
    except ValueError as e:
        raise ConfigurationError(f"{variable}={raw!r} is not a valid {parse.__name__}") from e


def _check(settings: Settings) -> None:
    if settings.url:
        try:
            check_entity_id(settings.url, "url")
        except ProtocolError as e:
            raise ConfigurationError(e.detail) from e
    if settings.kind not in ORGANIZATION_KINDS:
        raise ConfigurationError(f"kind must be one of: {', '.join(ORGANIZATION_KINDS)}")
    if not 0 < settings.port < 65_536:
        raise ConfigurationError(f"port {settings.port} is out of range")
    if settings.log_level not in LOG_LEVELS:
        raise ConfigurationError(f"log_level must be one of: {', '.join(LOG_LEVELS)}")
    for name in (
        "key_overlap_seconds",
        "peer_refresh_seconds",
        "worker_interval_seconds",
        "http_timeout_seconds",
        "access_token_seconds",
        "sync_concurrency",
        "delivery_poll_seconds",
        "delivery_concurrency",
        "delivery_deadline_seconds",
        "delivery_lease_seconds",
        "delivery_backoff_seconds",
        "delivery_max_backoff_seconds",
        "retention_days",
    ):
        if not getattr(settings, name) > 0:  # also refuses a NaN timeout
            raise ConfigurationError(f"{name} must be positive")
    if not 0 <= settings.trusted_proxies <= 10:
        raise ConfigurationError("trusted_proxies must be from 0 to 10")
    if settings.capacity_poll_seconds < 60:
        raise ConfigurationError("capacity_poll_seconds must be at least 60 (SPEC 4.1)")


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return str(value)
