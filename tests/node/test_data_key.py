"""The data key: sealing values at rest, rotation, tampering, the key file, and the node's key.

Ring-level tests run on a file in ``tmp_path`` with a low PBES2 iteration count (the
format is the same; only deriving the wrapping key is cheaper), as tests/protocol does
for keys.jwk. The tests of ``init`` and of the node's key use a real home folder.
"""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_node.data_key import OVERHEAD, DataKeyError, DataKeyRing
from exchange_node.errors import ConfigurationError
from exchange_node.protocol.limits import Limits
from tests.conftest import NOW

FAST = Limits(key_storage_iterations=1000)
PASSPHRASE = "correct horse battery staple"
IDENTITY = {"name": "Clinic", "kind": "clinic", "url": "https://clinic.example"}
CONTEXT = "referrals/42/person"
SECRET = b"Dana Example, +44 20 7946 0001, do not leave a voicemail"

#: Where each part of a sealed value lies, and what a changed byte there is refused as.
PARTS = {
    "version": (0, "unknown format version 0"),
    "key id": (1, "names data key"),
    "last byte of the key id": (8, "names data key"),
    "nonce": (9, "does not open"),
    "ciphertext": (21, "does not open"),
    "tag": (-16, "does not open"),
    "last byte of the tag": (-1, "does not open"),
}


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "data.key"


@pytest.fixture
def ring(key_path: Path) -> DataKeyRing:
    return DataKeyRing.create(key_path, None, NOW, limits=FAST)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored_jwks(path: Path) -> list[dict[str, object]]:
    keys = json.loads(path.read_bytes())["keys"]
    assert isinstance(keys, list)
    return keys


def key_material(ring: DataKeyRing) -> list[bytes]:
    """Every key's secret as raw bytes, hex and base64url (as the JWK holds it)."""
    forms = []
    for key in ring.keys:
        forms += [key.secret, key.secret.hex().encode()]
        forms.append(base64.urlsafe_b64encode(key.secret).rstrip(b"="))
    return forms


def flip(sealed: bytes, offset: int) -> bytes:
    changed = bytearray(sealed)
    changed[offset] ^= 0x01
    return bytes(changed)


# -- sealing and opening -------------------------------------------------------------------


def test_bytes_round_trip_and_format(ring: DataKeyRing) -> None:
    sealed = ring.seal(SECRET, context=CONTEXT)
    assert ring.open(sealed, context=CONTEXT) == SECRET
    assert len(sealed) == len(SECRET) + OVERHEAD == len(SECRET) + 37
    assert sealed[0] == 1
    assert sealed[1:9] == ring.sealing_key.key_id
    assert SECRET not in sealed


def test_json_round_trip_is_compact_utf8(ring: DataKeyRing) -> None:
    value = {"name": "Dana Ñandú", "phone": "+44 20 7946 0001", "languages": ["ar", "en"]}
    sealed = ring.seal_json(value, context=CONTEXT)
    assert ring.open_json(sealed, context=CONTEXT) == value
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert ring.open(sealed, context=CONTEXT) == compact


def test_values_that_are_not_json_are_refused(ring: DataKeyRing) -> None:
    with pytest.raises(DataKeyError, match="cannot be sealed as JSON"):
        ring.seal_json({"when": object()}, context=CONTEXT)
    with pytest.raises(DataKeyError, match="cannot be sealed as JSON"):
        ring.seal_json(float("nan"), context=CONTEXT)
    sealed = ring.seal(b"\xff not json", context=CONTEXT)
    with pytest.raises(DataKeyError, match="does not hold JSON"):
        ring.open_json(sealed, context=CONTEXT)


def test_empty_plaintext_round_trips(ring: DataKeyRing) -> None:
    assert ring.open(ring.seal(b"", context=CONTEXT), context=CONTEXT) == b""


def test_two_seals_of_the_same_value_differ(ring: DataKeyRing) -> None:
    first, second = ring.seal(SECRET, context=CONTEXT), ring.seal(SECRET, context=CONTEXT)
    assert first[9:21] != second[9:21]  # fresh nonces
    assert first != second


@pytest.mark.parametrize("part", PARTS)
def test_a_changed_byte_in_any_part_is_refused(ring: DataKeyRing, part: str) -> None:
    sealed = ring.seal(SECRET, context=CONTEXT)
    offset, says = PARTS[part]
    with pytest.raises(DataKeyError, match=says):
        ring.open(flip(sealed, offset), context=CONTEXT)


@pytest.mark.parametrize(
    "other", ["referrals/43/person", "referrals/42/notes", "referrals/42/person ", "r"]
)
def test_a_value_opens_only_in_its_own_context(ring: DataKeyRing, other: str) -> None:
    sealed = ring.seal(SECRET, context=CONTEXT)
    with pytest.raises(DataKeyError, match="sealed for another place"):
        ring.open(sealed, context=other)


def test_an_empty_context_is_refused(ring: DataKeyRing) -> None:
    with pytest.raises(DataKeyError, match="context"):
        ring.seal(SECRET, context="")
    with pytest.raises(DataKeyError, match="context"):
        ring.open(ring.seal(SECRET, context=CONTEXT), context="")


def test_an_unknown_key_id_is_refused(ring: DataKeyRing, tmp_path: Path) -> None:
    other = DataKeyRing.create(tmp_path / "other.key", None, NOW, limits=FAST)
    sealed = other.seal(SECRET, context=CONTEXT)
    with pytest.raises(DataKeyError, match=f"names data key {other.sealing_key.kid}"):
        ring.open(sealed, context=CONTEXT)


def test_a_value_under_another_key_with_the_same_id_does_not_open(
    ring: DataKeyRing, tmp_path: Path
) -> None:
    """Someone else's key file, carrying our key id: the tag check still refuses."""
    jwks = stored_jwks(ring.path)
    jwks[0]["k"] = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
    forged_path = tmp_path / "forged.key"
    forged_path.write_text(json.dumps({"keys": jwks}))
    forged = DataKeyRing.load(forged_path, None, limits=FAST)
    with pytest.raises(DataKeyError, match="does not open under data key"):
        ring.open(forged.seal(SECRET, context=CONTEXT), context=CONTEXT)


@pytest.mark.parametrize("length", [0, 1, 9, 21, OVERHEAD - 1])
def test_a_truncated_value_is_refused(ring: DataKeyRing, length: int) -> None:
    sealed = ring.seal(SECRET, context=CONTEXT)
    with pytest.raises(DataKeyError, match="truncated"):
        ring.open(sealed[:length], context=CONTEXT)
    with pytest.raises(DataKeyError, match="changed, truncated"):
        ring.open(sealed[:-1], context=CONTEXT)  # long enough, but its tag is cut


def test_errors_hold_neither_the_plaintext_nor_the_key(ring: DataKeyRing, tmp_path: Path) -> None:
    sealed = ring.seal(SECRET, context=CONTEXT)
    other = DataKeyRing.create(tmp_path / "other.key", None, NOW, limits=FAST)
    attempts: list[Callable[[], object]] = [
        lambda: ring.open(flip(sealed, 30), context=CONTEXT),
        lambda: ring.open(sealed, context="referrals/1/person"),
        lambda: ring.open(sealed[:20], context=CONTEXT),
        lambda: ring.open(other.seal(SECRET, context=CONTEXT), context=CONTEXT),
        lambda: ring.open(flip(sealed, 0), context=CONTEXT),
        lambda: ring.open_json(sealed, context=CONTEXT),
        lambda: ring.seal_json({"name": "Dana Example", "x": {1, 2}}, context=CONTEXT),
    ]
    secrets_ = [SECRET, b"Dana Example", *key_material(ring), *key_material(other)]
    for attempt in attempts:
        with pytest.raises(DataKeyError) as caught:
            attempt()
        error = caught.value
        shown = " ".join(
            [str(error), repr(error), json.dumps(error.to_problem()), repr(error.__cause__)]
        ).encode()
        assert error.code == "data_key"
        for secret in secrets_:
            assert secret not in shown, shown


# -- rotation ------------------------------------------------------------------------------


def test_after_rotation_the_new_key_seals_and_every_key_opens(ring: DataKeyRing) -> None:
    first = ring.sealing_key
    old = ring.seal(SECRET, context=CONTEXT)
    second = ring.rotate(NOW + 10)
    middle = ring.seal(SECRET, context=CONTEXT)
    third = ring.rotate(NOW + 20)
    new = ring.seal(SECRET, context=CONTEXT)
    assert [key.kid for key in ring.keys] == [first.kid, second.kid, third.kid]
    assert (old[1:9], middle[1:9], new[1:9]) == (first.key_id, second.key_id, third.key_id)
    for sealed in (old, middle, new):
        assert ring.open(sealed, context=CONTEXT) == SECRET
    reloaded = DataKeyRing.load(ring.path, None, limits=FAST)
    assert reloaded.sealing_key.kid == third.kid
    for sealed in (old, middle, new):
        assert reloaded.open(sealed, context=CONTEXT) == SECRET
    assert [entry["created_at"] for entry in stored_jwks(ring.path)] == [NOW, NOW + 10, NOW + 20]
    assert mode(ring.path) == 0o600
    assert sorted(p.name for p in ring.path.parent.iterdir()) == ["data.key"]  # no temp left


def test_a_rotation_that_cannot_be_stored_changes_nothing(
    ring: DataKeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key that never reached the file must never seal: its values could not be opened."""
    before, stored = ring.sealing_key, ring.path.read_bytes()

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("exchange_node.data_key.os.replace", disk_full)
    with pytest.raises(ConfigurationError, match=r"cannot write .*No space left"):
        ring.rotate(NOW + 10)
    assert ring.keys == (before,)
    assert ring.path.read_bytes() == stored
    assert sorted(p.name for p in ring.path.parent.iterdir()) == ["data.key"]


def test_a_rotation_by_another_process_is_picked_up(ring: DataKeyRing) -> None:
    elsewhere = DataKeyRing.load(ring.path, None, limits=FAST)
    elsewhere.rotate(NOW + 10)
    sealed = elsewhere.seal(SECRET, context=CONTEXT)
    assert ring.open(sealed, context=CONTEXT) == SECRET  # unknown id: the file is read again
    ring.rotate(NOW + 20)  # keeps the key the other process added
    assert len(DataKeyRing.load(ring.path, None, limits=FAST).keys) == 3


# -- the key file --------------------------------------------------------------------------


def test_key_file_is_a_private_jwk_set(ring: DataKeyRing) -> None:
    assert mode(ring.path) == 0o600
    (entry,) = stored_jwks(ring.path)
    assert set(entry) == {"kty", "kid", "alg", "k", "created_at"}
    assert (entry["kty"], entry["alg"], entry["kid"]) == ("oct", "A256GCM", ring.sealing_key.kid)
    assert entry["created_at"] == NOW
    assert len(ring.sealing_key.kid) == 16


def test_create_refuses_to_replace_a_key_file(ring: DataKeyRing) -> None:
    before = ring.path.read_bytes()
    with pytest.raises(ConfigurationError, match="refusing to replace"):
        DataKeyRing.create(ring.path, None, NOW, limits=FAST)
    assert ring.path.read_bytes() == before


def test_passphrase_encrypts_the_key_file(key_path: Path) -> None:
    ring = DataKeyRing.create(key_path, PASSPHRASE, NOW, limits=FAST)
    stored = key_path.read_bytes()
    assert stored.count(b".") == 4  # a compact JWE
    header = json.loads(base64.urlsafe_b64decode(stored.split(b".")[0] + b"=="))
    assert header == {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "cty": "jwk-set+json"} | {
        "p2s": header["p2s"],
        "p2c": 1000,
    }
    for secret in [*key_material(ring), PASSPHRASE.encode(), ring.sealing_key.kid.encode()]:
        assert secret not in stored
    assert mode(key_path) == 0o600
    sealed = ring.seal(SECRET, context=CONTEXT)
    ring.rotate(NOW + 1)
    reloaded = DataKeyRing.load(key_path, PASSPHRASE, limits=FAST)
    assert reloaded.open(sealed, context=CONTEXT) == SECRET
    assert key_path.read_bytes().count(b".") == 4  # still encrypted after the rotation


@pytest.mark.parametrize(
    ("passphrase", "says"),
    [
        (None, "is encrypted: set EXCHANGE_KEY_PASSPHRASE"),
        ("not the passphrase at all", "cannot be decrypted with this passphrase"),
        ("short", "at least 14 characters"),
    ],
)
def test_a_wrong_or_missing_passphrase_is_refused_clearly(
    key_path: Path, passphrase: str | None, says: str
) -> None:
    DataKeyRing.create(key_path, PASSPHRASE, NOW, limits=FAST)
    with pytest.raises(ConfigurationError, match=says) as caught:
        DataKeyRing.load(key_path, passphrase, limits=FAST)
    assert str(key_path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "corrupt"),
        (b"{not json", "corrupt"),
        (b'{"keys": []}', "corrupt"),
        (b'{"keys": [{"kty": "OKP"}]}', "not an 'oct' JWK"),
        (b'{"keys": [{"kty": "oct", "alg": "A128GCM"}]}', "alg is not A256GCM"),
        (b'{"keys": [{"kty": "oct", "alg": "A256GCM", "kid": "zz"}]}', "16 hex digits"),
        (b"eyJhbGciOiJub25lIn0.x.y.z.w", "is encrypted: set EXCHANGE_KEY_PASSPHRASE"),
    ],
)
def test_a_corrupt_key_file_is_refused_clearly(key_path: Path, content: bytes, says: str) -> None:
    key_path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=says) as caught:
        DataKeyRing.load(key_path, None, limits=FAST)
    assert str(key_path) in str(caught.value)


def test_a_key_file_with_a_short_or_doubled_key_is_refused(ring: DataKeyRing) -> None:
    (entry,) = stored_jwks(ring.path)
    ring.path.write_text(json.dumps({"keys": [entry, entry]}))
    with pytest.raises(ConfigurationError, match="lists a key twice"):
        DataKeyRing.load(ring.path, None, limits=FAST)
    ring.path.write_text(json.dumps({"keys": [entry | {"k": "AAAA"}]}))
    with pytest.raises(ConfigurationError, match="does not hold 32 bytes"):
        DataKeyRing.load(ring.path, None, limits=FAST)


def test_a_missing_key_file_is_refused_clearly(key_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is missing; restore it from a backup"):
        DataKeyRing.load(key_path, None, limits=FAST)


def test_concurrent_first_use_makes_one_key(key_path: Path) -> None:
    """Separate rings (as separate processes would) racing to make the key agree on one."""
    barrier = threading.Barrier(8)
    results: list[tuple[DataKeyRing, bool]] = []

    def first_use() -> None:
        barrier.wait()
        results.append(DataKeyRing.load_or_create(key_path, None, NOW, limits=FAST))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert [created for _, created in results].count(True) == 1
    assert {ring.sealing_key.kid for ring, _ in results} == {stored_jwks(key_path)[0]["kid"]}
    assert len(stored_jwks(key_path)) == 1
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["data.key"]


# -- property tests ------------------------------------------------------------------------

contexts = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)


@pytest.fixture(scope="module")
def property_ring(tmp_path_factory: pytest.TempPathFactory) -> DataKeyRing:
    """One ring for every example (hypothesis runs them all within one test call)."""
    path = tmp_path_factory.mktemp("property") / "data.key"
    ring = DataKeyRing.create(path, None, NOW, limits=FAST)
    ring.rotate(NOW + 1)  # two keys: a value must not open under the other one
    return ring


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=512), context=contexts)
def test_property_any_bytes_and_context_round_trip(
    property_ring: DataKeyRing, plaintext: bytes, context: str
) -> None:
    sealed = property_ring.seal(plaintext, context=context)
    assert property_ring.open(sealed, context=context) == plaintext


@settings(max_examples=300, deadline=None)
@given(plaintext=st.binary(max_size=64), context=contexts, data=st.data())
def test_property_mutations_never_open(
    property_ring: DataKeyRing, plaintext: bytes, context: str, data: st.DataObject
) -> None:
    sealed = property_ring.seal(plaintext, context=context)
    mutation = data.draw(st.sampled_from(["flip", "truncate", "extend", "context"]))
    opened_in = context
    if mutation == "flip":
        offset = data.draw(st.integers(0, len(sealed) - 1))
        changed = bytearray(sealed)
        changed[offset] ^= data.draw(st.integers(1, 255))
        mutated = bytes(changed)
    elif mutation == "truncate":
        mutated = sealed[: data.draw(st.integers(0, len(sealed) - 1))]
    elif mutation == "extend":
        mutated = sealed + data.draw(st.binary(min_size=1, max_size=8))
    else:
        mutated, opened_in = sealed, data.draw(contexts.filter(lambda other: other != context))
    with pytest.raises(DataKeyError):
        property_ring.open(mutated, context=opened_in)
