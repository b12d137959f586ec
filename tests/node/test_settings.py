"""Settings: defaults, node.toml, EXCHANGE_* variables, refusals; the home folder and key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from exchange_node.errors import ConfigurationError
from exchange_node.keystore import KeyStore
from exchange_node.services.setup import initialize_node
from exchange_node.settings import Settings, load_settings, write_config
from tests.conftest import NOW

PASSPHRASE = "correct horse battery staple"
IDENTITY = {"name": "Clinic", "kind": "clinic", "url": "https://clinic.example"}


def write_toml(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "node.toml").write_text(text, encoding="utf-8")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def init(home: Path, environ: dict[str, str] | None = None) -> Settings:
    settings = load_settings(home, environ=environ or {}, **IDENTITY)
    initialize_node(settings, NOW)
    return settings


def test_defaults_work_for_one_node_on_a_laptop(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.home == tmp_path.resolve()
    assert (settings.host, settings.port) == ("127.0.0.1", 8040)
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'node.db'}"
    assert settings.key_passphrase is None
    assert settings.key_overlap_seconds == 172_800
    assert settings.log_level == "INFO"
    assert not settings.is_initialized


def test_home_comes_from_exchange_home_when_not_given(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"EXCHANGE_HOME": str(tmp_path / "node")})
    assert settings.home == (tmp_path / "node").resolve()


def test_node_toml_values_are_read(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'name = "Clinic"\nkind = "clinic"\nurl = "https://clinic.example"\n'
        'languages = ["en", "fr"]\nport = 9000\nhttp_timeout_seconds = 2.5\n',
    )
    settings = load_settings(tmp_path, environ={})
    assert (settings.name, settings.kind, settings.url) == tuple(IDENTITY.values())
    assert settings.languages == ("en", "fr")
    assert (settings.port, settings.http_timeout_seconds) == (9000, 2.5)
    assert settings.is_initialized


def test_environment_overrides_node_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, 'port = 9000\nlog_level = "INFO"\n')
    environ = {
        "EXCHANGE_PORT": "9100",
        "EXCHANGE_LOG_LEVEL": "debug",
        "EXCHANGE_DATABASE_URL": "postgresql://exchange@db/exchange",
        "EXCHANGE_KEY_PASSPHRASE": PASSPHRASE,
    }
    settings = load_settings(tmp_path, environ=environ)
    assert (settings.port, settings.log_level) == (9100, "DEBUG")
    assert settings.database_url == "postgresql://exchange@db/exchange"
    assert settings.key_passphrase == PASSPHRASE
    assert PASSPHRASE not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"EXCHANGE_PORT": "eighty"}, "EXCHANGE_PORT='eighty' is not a valid int"),
        ({"EXCHANGE_PORT": "70000"}, "port 70000 is out of range"),
        ({"EXCHANGE_KEY_OVERLAP_SECONDS": "0"}, "key_overlap_seconds must be positive"),
        ({"EXCHANGE_HTTP_TIMEOUT_SECONDS": "-1"}, "http_timeout_seconds must be positive"),
        ({"EXCHANGE_HTTP_TIMEOUT_SECONDS": "nan"}, "http_timeout_seconds must be positive"),
        ({"EXCHANGE_LOG_LEVEL": "chatty"}, "log_level must be one of: DEBUG, INFO"),
    ],
)
def test_bad_environment_value_is_a_clear_configuration_error(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        load_settings(tmp_path, environ=environ)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('port = "8040"\n', "port has the wrong type"),
        ("port = true\n", "port has the wrong type"),
        ('kind = "hospital"\n', "kind must be one of: community-network, clinic"),
        ("port = \n", "cannot read"),
        ('colour = "blue"\n', "unknown settings colour"),
        (f'key_passphrase = "{PASSPHRASE}"\n', "unknown settings key_passphrase"),
    ],
)
def test_bad_node_toml_is_a_clear_configuration_error(
    tmp_path: Path, toml: str, message: str
) -> None:
    write_toml(tmp_path, toml)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(tmp_path, environ={})


def test_written_config_holds_only_the_chosen_settings(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={}, port=9000, **IDENTITY)
    write_config(settings, (*IDENTITY, "port"))
    text = (tmp_path / "node.toml").read_text(encoding="utf-8")
    assert "port = 9000" in text
    assert "database_url" not in text
    assert "host" not in text
    assert mode(tmp_path / "node.toml") == 0o600
    assert load_settings(tmp_path, environ={}) == settings


def test_init_does_not_copy_the_environment_into_node_toml(tmp_path: Path) -> None:
    # A database URL given in the environment may hold a password: it stays there.
    database = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    environ = {"EXCHANGE_DATABASE_URL": database, "EXCHANGE_PORT": "9001"}
    settings = load_settings(tmp_path / "home", environ=environ, **IDENTITY)
    initialize_node(settings, NOW)
    text = settings.config_path.read_text(encoding="utf-8")
    assert "elsewhere" not in text
    assert "9001" not in text
    assert load_settings(tmp_path / "home", environ=environ).database_url == database


def test_init_makes_a_private_home_and_key_file(tmp_path: Path) -> None:
    settings = init(tmp_path / "home")
    assert mode(settings.home) == 0o700
    assert mode(settings.keys_path) == 0o600
    assert settings.keys_path.read_bytes().startswith(b"{")  # no passphrase: plain JWK Set


def test_init_refuses_a_home_that_holds_a_node(tmp_path: Path) -> None:
    init(tmp_path / "home")
    with pytest.raises(ConfigurationError, match="already holds a node"):
        init(tmp_path / "home")


def test_init_refuses_an_http_url_off_loopback(tmp_path: Path) -> None:
    # Refused as soon as the settings are read, before anything is written.
    with pytest.raises(ConfigurationError, match="https"):
        load_settings(tmp_path, environ={}, **(IDENTITY | {"url": "http://clinic.example"}))
    assert not (tmp_path / "node.toml").exists()


def test_passphrase_encrypts_the_key_file_and_is_never_written(tmp_path: Path) -> None:
    settings = init(tmp_path / "home", {"EXCHANGE_KEY_PASSPHRASE": PASSPHRASE})
    stored = settings.keys_path.read_bytes()
    assert not stored.startswith(b"{")
    assert stored.count(b".") == 4  # a compact JWE
    assert mode(settings.keys_path) == 0o600
    for path in settings.home.iterdir():
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path.name
    assert len(KeyStore(settings.keys_path, PASSPHRASE).load()) == 2


def test_encrypted_key_file_does_not_load_without_the_passphrase(tmp_path: Path) -> None:
    settings = init(tmp_path / "home", {"EXCHANGE_KEY_PASSPHRASE": PASSPHRASE})
    with pytest.raises(ConfigurationError, match="check EXCHANGE_KEY_PASSPHRASE"):
        KeyStore(settings.keys_path, None).load()
    with pytest.raises(ConfigurationError, match="check EXCHANGE_KEY_PASSPHRASE"):
        KeyStore(settings.keys_path, "not the passphrase at all").load()


def test_short_passphrase_is_refused_at_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 14 characters"):
        init(tmp_path / "home", {"EXCHANGE_KEY_PASSPHRASE": "too short"})
    assert not (tmp_path / "home" / "keys.jwk").exists()
