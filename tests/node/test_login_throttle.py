"""The sign-in throttle on SQLite and PostgreSQL: counts, locks, forgetting, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from exchange_node.db.models import LoginThrottle
from exchange_node.services import login_throttle
from exchange_node.services.login_throttle import POLICY, SignInThrottledError, sign_in_keys
from tests.node.conftest import TestClock, TestNode

EMAIL = "Volunteer@Community.example"
SECRET = b"k" * 32
KEYS = sign_in_keys(EMAIL, "192.0.2.7", secret=SECRET)


def fail(node: TestNode, keys: login_throttle.SignInKeys = KEYS, times: int = 1) -> int | None:
    lock = None
    for _ in range(times):
        with node.node.database.session() as session:
            lock = login_throttle.record_failure(session, keys, node.node.now())
    return lock


def retry_after(node: TestNode, keys: login_throttle.SignInKeys = KEYS) -> int | None:
    """None when an attempt is allowed, else the seconds to wait."""
    with node.node.database.session() as session:
        try:
            login_throttle.check_allowed(session, keys, node.node.now())
        except SignInThrottledError as e:
            return e.retry_after
    return None


def rows(node: TestNode) -> dict[str, LoginThrottle]:
    with node.node.database.session() as session:
        return {row.key: row for row in session.scalars(select(LoginThrottle))}


def test_the_lock_starts_at_one_minute_doubles_and_stops_at_fifteen() -> None:
    locks = [POLICY.lock_seconds(failures, 5) for failures in range(3, 12)]
    assert locks == [None, None, 60, 120, 240, 480, 900, 900, 900]
    assert POLICY.lock_seconds(10_000, 5) == 900


def test_five_failures_lock_the_account_from_that_address_and_each_further_one_doubles_it(
    community: TestNode, clock: TestClock
) -> None:
    assert fail(community, times=4) is None
    assert retry_after(community) is None
    assert fail(community) == 60
    assert retry_after(community) == 60
    clock.advance(30)
    assert retry_after(community) == 30
    clock.advance(30)
    assert retry_after(community) is None  # the lock is over
    assert fail(community) == 120  # but the count is not: the next failure locks again, longer
    clock.advance(120)
    assert fail(community) == 240


def test_the_account_from_that_address_is_locked_whatever_case(community: TestNode) -> None:
    fail(community, times=5)
    again = sign_in_keys(" volunteer@community.EXAMPLE ", "192.0.2.7", secret=SECRET)
    assert again == KEYS
    assert retry_after(community, again) == 60
    assert (
        retry_after(community, sign_in_keys("other@community.example", "192.0.2.7", secret=SECRET))
        is None
    )


def test_failures_from_another_address_do_not_lock_the_owner_out(community: TestNode) -> None:
    """Someone guessing from elsewhere cannot keep the account's owner from signing in."""
    attacker = sign_in_keys(EMAIL, "198.51.100.66", secret=SECRET)
    assert fail(community, attacker, times=6) == 120
    assert retry_after(community, attacker) == 120  # the attacker's address is locked out
    assert attacker.account == KEYS.account
    assert retry_after(community, KEYS) is None  # the owner, from their own address, is not
    assert rows(community)[KEYS.account].failures == 6
    assert rows(community)[KEYS.account].locked_until is None


def test_many_failures_from_many_addresses_lock_the_account_everywhere(
    community: TestNode,
) -> None:
    for number in range(POLICY.account_threshold - 1):
        spread = sign_in_keys(EMAIL, f"198.51.{number // 200}.{number % 200 + 1}", secret=SECRET)
        assert fail(community, spread) is None
    last = sign_in_keys(EMAIL, "203.0.113.50", secret=SECRET)
    assert fail(community, last) == 60
    assert retry_after(community, KEYS) == 60  # the owner too: distributed guessing stops
    assert (
        retry_after(
            community, sign_in_keys("other@community.example", "203.0.113.50", secret=SECRET)
        )
        is None
    )


def test_a_success_clears_the_account_from_that_address_only(community: TestNode) -> None:
    fail(community, times=4)
    with community.node.database.session() as session:
        login_throttle.record_success(session, KEYS)
    assert set(rows(community)) == {KEYS.address, KEYS.account}
    assert rows(community)[KEYS.address].failures == 4
    assert rows(community)[KEYS.account].failures == 4
    assert fail(community, times=4) is None  # counting starts again for the account here


def test_an_address_is_locked_after_twenty_failures_across_accounts(community: TestNode) -> None:
    for number in range(19):
        assert (
            fail(
                community,
                sign_in_keys(f"user{number}@community.example", "192.0.2.7", secret=SECRET),
            )
            is None
        )
    new_account = sign_in_keys("someone.new@community.example", "192.0.2.7", secret=SECRET)
    assert fail(community, new_account) == 60
    assert (
        retry_after(
            community, sign_in_keys("another@community.example", "192.0.2.7", secret=SECRET)
        )
        == 60
    )
    assert (
        retry_after(
            community, sign_in_keys("another@community.example", "192.0.2.8", secret=SECRET)
        )
        is None
    )


def test_one_ipv6_network_counts_as_one_address() -> None:
    first = sign_in_keys(EMAIL, "2001:db8:1:2::1", secret=SECRET)
    assert first == sign_in_keys(EMAIL, "2001:db8:1:2:ffff::9", secret=SECRET)
    other_network = sign_in_keys(EMAIL, "2001:db8:1:3::1", secret=SECRET)
    assert (other_network.pair, other_network.address) != (first.pair, first.address)
    assert other_network.account == first.account
    assert sign_in_keys(EMAIL, "::ffff:192.0.2.7", secret=SECRET) == KEYS
    assert len({KEYS.pair, KEYS.address, KEYS.account}) == 3


def test_failures_are_forgotten_a_window_after_the_last_one(
    community: TestNode, clock: TestClock
) -> None:
    fail(community, times=4)
    clock.advance(POLICY.window_seconds)
    other = sign_in_keys("other@community.example", "198.51.100.1", secret=SECRET)
    fail(community, other)  # any failure deletes what has expired
    assert set(rows(community)) == {other.pair, other.address, other.account}
    assert fail(community, times=4) is None  # a fresh count


def test_a_lock_is_remembered_a_window_after_it_ends(community: TestNode, clock: TestClock) -> None:
    fail(community, times=5)
    clock.advance(60 + POLICY.window_seconds - 1)
    assert fail(community) == 120
    clock.advance(120 + POLICY.window_seconds)
    assert fail(community) is None  # forgotten: back to one failure


def test_the_table_holds_digests_never_the_address(community: TestNode) -> None:
    fail(community, times=2)
    stored = rows(community)
    assert set(stored) == {KEYS.pair, KEYS.address, KEYS.account}
    for key in stored:
        assert len(key) == 64
        assert int(key, 16) >= 0
    text = " ".join(f"{row.key} {row.failures} {row.locked_until}" for row in stored.values())
    for secret in ("volunteer", "community", "192.0.2.7"):
        assert secret not in text.lower()


def test_concurrent_failures_are_all_counted(community: TestNode) -> None:
    workers = 8
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: fail(community), range(workers)))
    for key in (KEYS.pair, KEYS.address, KEYS.account):
        assert rows(community)[key].failures == workers
    assert retry_after(community) == 60 * 2 ** (workers - POLICY.pair_threshold)
