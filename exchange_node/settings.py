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
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.wire import ORGANIZATION_KINDS

CONFIG_FILE = "node.toml"
DEFAULT_HOME = "~/.exchange-node"


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
    #: How often the in-process worker runs a round.
    worker_interval_seconds: int = 30
    #: Timeout of one request to a peer.
    http_timeout_seconds: float = 10.0
    #: Lifetime of OAuth 2 access tokens issued to integration clients.
    access_token_seconds: int = 3_600
    log_level: str = "INFO"
    limits: Limits = DEFAULT_LIMITS

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def keys_path(self) -> Path:
        return self.home / "keys.jwk"

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
    "EXCHANGE_WORKER_INTERVAL_SECONDS": ("worker_interval_seconds", int),
    "EXCHANGE_HTTP_TIMEOUT_SECONDS": ("http_timeout_seconds", float),
    "EXCHANGE_ACCESS_TOKEN_SECONDS": ("access_token_seconds", int),
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
    "worker_interval_seconds": int,
    "http_timeout_seconds": (int, float),
    "access_token_seconds": int,
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
        if variable in environ:
            values[name] = _parse(variable, environ[variable], parse)
    values.update(overrides)
    if "languages" in values:
        values["languages"] = tuple(values["languages"])
    settings = replace(settings, **values)
    if not settings.database_url:
        settings = replace(settings, database_url=f"sqlite:///{settings.home / 'node.db'}")
    _check(settings)
    return settings


def write_config(settings: Settings) -> None:
    """Write node.toml for ``init``: identity, and only the settings that differ from defaults."""
    defaults = Settings(home=settings.home)
    lines = ["# exchange-node settings; EXCHANGE_* environment variables override them.\n"]
    for name in _FILE_TYPES:
        value = getattr(settings, name)
        if name in ("name", "kind", "url", "languages") or value != getattr(defaults, name):
            if name == "database_url" and value == f"sqlite:///{settings.home / 'node.db'}":
                continue
            lines.append(f"{name} = {_toml_value(value)}\n")
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text("".join(lines), encoding="utf-8")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read {path}: {e}") from e
    unknown = sorted(set(data) - set(_FILE_TYPES))
    if unknown:
        raise ConfigurationError(f"{path}: unknown settings {', '.join(unknown)}")
    for name, value in data.items():
        if not isinstance(value, _FILE_TYPES[name]) or isinstance(value, bool):
            raise ConfigurationError(f"{path}: {name} has the wrong type")
    return data


def _parse(variable: str, raw: str, parse: type) -> Any:
    try:
        return parse(raw)
    except ValueError as e:
        raise ConfigurationError(f"{variable}={raw!r} is not a valid {parse.__name__}") from e


def _check(settings: Settings) -> None:
    if settings.kind not in ORGANIZATION_KINDS:
        raise ConfigurationError(f"kind must be one of: {', '.join(ORGANIZATION_KINDS)}")
    if not 0 < settings.port < 65_536:
        raise ConfigurationError(f"port {settings.port} is out of range")
    for name in (
        "key_overlap_seconds",
        "peer_refresh_seconds",
        "worker_interval_seconds",
        "access_token_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigurationError(f"{name} must be positive")


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return str(value)
