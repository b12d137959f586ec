"""The node's data key: made by init, or on first use; sealed values in the database."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from exchange_node.data_key import DataKeyRing
from exchange_node.db.models import Peer, Referral
from exchange_node.errors import ConfigurationError
from exchange_node.node import Node
from exchange_node.protocol.limits import Limits
from exchange_node.services.setup import initialize_node
from exchange_node.settings import Settings, load_settings
from tests.conftest import NOW
from tests.node.test_data_key import key_material, mode, stored_jwks

FAST = Limits(key_storage_iterations=1000)
PASSPHRASE = "correct horse battery staple"
IDENTITY = {"name": "Clinic", "kind": "clinic", "url": "https://clinic.example"}
CONTEXT = "referrals/42/person"
SECRET = b"Dana Example, +44 20 7946 0001, do not leave a voicemail"


def init(home: Path, environ: dict[str, str] | None = None) -> Settings:
    settings = load_settings(home, environ=environ or {}, **IDENTITY)
    initialize_node(settings, NOW)
    return load_settings(home, environ=environ or {})


def test_init_makes_the_data_key(tmp_path: Path) -> None:
    settings = init(tmp_path / "home")
    assert mode(settings.data_key_path) == 0o600
    assert len(stored_jwks(settings.data_key_path)) == 1
    node = Node.open(settings)
    try:
        sealed = node.data_key.seal(SECRET, context=CONTEXT)
        assert node.data_key is node.data_key  # read once
        reopened = Node.open(settings)
        assert reopened.data_key.open(sealed, context=CONTEXT) == SECRET
        reopened.database.dispose()
    finally:
        node.database.dispose()


def test_init_under_a_passphrase_encrypts_the_data_key(tmp_path: Path) -> None:
    settings = init(tmp_path / "home", {"EXCHANGE_KEY_PASSPHRASE": PASSPHRASE})
    stored = settings.data_key_path.read_bytes()
    assert stored.count(b".") == 4
    node = Node.open(settings)
    try:
        for secret in key_material(node.data_key):
            assert secret not in stored
    finally:
        node.database.dispose()
    wrong = load_settings(settings.home, environ={"EXCHANGE_KEY_PASSPHRASE": "x" * 20})
    node = Node.open(wrong)  # opening does not need the data key ...
    try:
        with pytest.raises(ConfigurationError, match="check EXCHANGE_KEY_PASSPHRASE"):
            _ = node.data_key  # ... its first use does
    finally:
        node.database.dispose()


def test_init_refuses_a_home_holding_a_data_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "data.key").write_bytes(b"kept")
    with pytest.raises(ConfigurationError, match="refusing to replace the data key"):
        init(home)
    assert (home / "data.key").read_bytes() == b"kept"
    assert not (home / "keys.jwk").exists()
    assert not (home / "node.toml").exists()


def test_a_node_initialized_without_a_data_key_makes_one_on_first_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = init(tmp_path / "home")
    settings.data_key_path.unlink()  # as a node initialized before data keys existed
    node = Node.open(settings)  # does not fail
    try:
        assert not settings.data_key_path.exists()
        with caplog.at_level(logging.WARNING, logger="exchange_node.node"):
            kid = node.data_key.sealing_key.kid
        assert mode(settings.data_key_path) == 0o600
        assert stored_jwks(settings.data_key_path)[0]["kid"] == kid
        assert [r.getMessage() for r in caplog.records] == [
            f"made the data key {kid} in {settings.data_key_path} (this node had none): "
            "back it up with keys.jwk"
        ]
    finally:
        node.database.dispose()


def test_concurrent_first_use_by_a_node_makes_one_key(tmp_path: Path) -> None:
    settings = init(tmp_path / "home")
    settings.data_key_path.unlink()
    node = Node.open(settings)
    barrier = threading.Barrier(8)
    rings: list[DataKeyRing] = []

    def first_use() -> None:
        barrier.wait()
        rings.append(node.data_key)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        node.database.dispose()
    assert len(rings) == 8
    assert all(ring is rings[0] for ring in rings)
    assert len(stored_jwks(settings.data_key_path)) == 1


def test_sealed_values_stored_in_the_database_hold_no_plaintext(tmp_path: Path) -> None:
    """What referral storage will do: only the sealed bytes reach the SQLite file."""
    settings = init(tmp_path / "home")
    node = Node.open(settings)
    try:
        sealed = node.data_key.seal_json({"name": "Dana Example"}, context=CONTEXT)
        with node.database.session() as session:
            session.execute(text("CREATE TABLE probe (value BLOB)"))
            session.execute(text("INSERT INTO probe VALUES (:value)"), {"value": sealed})
        with node.database.session() as session:
            stored = session.execute(text("SELECT value FROM probe")).scalar_one()
        assert node.data_key.open_json(bytes(stored), context=CONTEXT) == {"name": "Dana Example"}
    finally:
        node.database.dispose()
    for path in settings.home.iterdir():
        if path.is_file():
            assert b"Dana Example" not in path.read_bytes(), path.name


def test_a_lost_data_key_is_not_replaced_while_sealed_values_exist(tmp_path: Path) -> None:
    """A missing data.key over sealed rows means it was lost: a new key would open none."""
    settings = init(tmp_path / "home")
    node = Node.open(settings)
    try:
        with node.database.session() as session:
            peer = Peer(
                entity_id="https://community.example",
                status="trusted",
                organization_name="Community",
                organization_kind="community-network",
                entity_configuration="-",
                configuration_issued_at=NOW,
                configuration_expires_at=NOW + 3600,
                capacity_endpoint="https://community.example/federation/v1/capacity",
                inbox_endpoint="https://community.example/federation/v1/inbox",
                peering_endpoint="https://community.example/federation/v1/peering-requests",
                languages=["en"],
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(peer)
            session.flush()
            referral = Referral(
                referral_id="4a8e2f10-9c3b-4d6e-a1f7-0b5c8d2e6f93",
                role="received",
                peer_id=peer.id,
                service_id="s1",
                status="requested",
                consent_id="c6f1e9a0-5b7d-4c1e-8f3a-2d9b0e4c7a11",
                consent_expires_at=NOW + 86_400,
                created_by="peer:https://community.example",
                created_at=NOW,
                updated_at=NOW,
            )
            referral.sealed = node.data_key.seal(SECRET, context=CONTEXT)
            session.add(referral)
    finally:
        node.database.dispose()
    kept = settings.data_key_path.read_bytes()
    settings.data_key_path.unlink()  # lost
    node = Node.open(settings)
    try:
        with pytest.raises(ConfigurationError, match=r"restore data\.key from the backup"):
            _ = node.data_key
        assert not settings.data_key_path.exists()  # nothing made over the sealed values
        settings.data_key_path.write_bytes(kept)  # restored from the backup
        assert node.data_key.open(referral.sealed or b"", context=CONTEXT) == SECRET
    finally:
        node.database.dispose()
