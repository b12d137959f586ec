"""Throttled sign-in: failed attempts counted per account and address, address, and account.

Each failed sign-in counts against three keys, each an HMAC-SHA-256 keyed with a secret
of the node (so that a copy of the table cannot be checked against a list of known
addresses; neither the e-mail address nor the IP is stored):

- the account from this client address (the normalized e-mail address and the IP; for
  IPv6 its /64, which one machine usually holds whole): a few failures lock it, so
  guessing one account's password from one place stops quickly, while the account's
  owner, signing in from their own address, is not locked out by someone else's guesses;
- the client address alone: more failures, across any accounts, lock it (one place
  trying many accounts);
- the account alone, with a high threshold: many failures from many addresses lock it
  everywhere (guessing spread over many machines).

When a key reaches its threshold of failures within the window (:class:`ThrottlePolicy`),
it is locked: 1 minute, then double for each further failure, at most 15 minutes. While
any of the three is locked, :func:`check_allowed` refuses the attempt before any password
is checked. A success clears the count of the account from that address only (not the
address's: one good account must not unlock guessing at others; not the account's: one
good sign-in says nothing of guesses from elsewhere). A key is forgotten one window after
its last failure or the end of its lock; :func:`record_failure` deletes forgotten rows as
it goes.

Counts live in the database so that every web worker sees the same ones. A failure is
counted by one upsert per key (``INSERT ... ON CONFLICT DO UPDATE``), which holds the row
until the transaction ends, so concurrent workers never lose a count. Attempts already
past the check when a key locks still finish (at most one per worker thread).
This module neither reads requests nor renders anything; the sign-in page calls it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange_node.db.models import LoginThrottle
from exchange_node.errors import ExchangeError

__all__ = [
    "POLICY",
    "SignInKeys",
    "SignInThrottledError",
    "ThrottlePolicy",
    "check_allowed",
    "forget_expired",
    "record_failure",
    "record_success",
    "sign_in_keys",
]


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures lock a key, and for how long."""

    #: Failures are counted over this many seconds (from the last failure or lock).
    window_seconds: int = 15 * 60
    #: Failures that lock one account from one client address, one client address
    #: (any accounts), and one account (from any addresses).
    pair_threshold: int = 5
    address_threshold: int = 20
    account_threshold: int = 50
    #: The first lock; each further failure doubles it, up to the longest.
    first_lock_seconds: int = 60
    max_lock_seconds: int = 15 * 60

    def lock_seconds(self, failures: int, threshold: int) -> int | None:
        """How long ``failures`` lock a key with this ``threshold`` (None: not locked)."""
        if failures < threshold:
            return None
        doublings = min(failures - threshold, 16)  # 2**16 minutes is past any cap
        return min(self.first_lock_seconds << doublings, self.max_lock_seconds)


POLICY = ThrottlePolicy()


class SignInThrottledError(ExchangeError):
    """Too many failed sign-ins for this account or from this address: wait ``retry_after``."""

    code = "too_many_requests"
    title = "Too many failed sign-ins"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} seconds")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInKeys:
    """The three keys a sign-in attempt counts against (hex HMAC-SHA-256, never the values)."""

    #: The account from this client address.
    pair: str
    address: str
    account: str


def sign_in_keys(email: str, client_address: str | None, *, secret: bytes) -> SignInKeys:
    """The keys of an attempt for ``email`` from ``client_address`` (the request's IP),
    keyed with ``secret`` (the web app's session key)."""
    account, network = email.strip().lower(), _network(client_address or "")
    return SignInKeys(
        pair=_digest(secret, "account-address", f"{account}\x00{network}"),
        address=_digest(secret, "address", network),
        account=_digest(secret, "account", account),
    )


def check_allowed(session: Session, keys: SignInKeys, now: int) -> None:
    """Refuse the attempt if one of its keys is locked at ``now``.

    Raises:
        SignInThrottledError: one of them is locked; ``retry_after`` says for how long.
    """
    locked_until = session.scalar(
        select(LoginThrottle.locked_until)
        .where(LoginThrottle.key.in_((keys.pair, keys.address, keys.account)))
        .where(LoginThrottle.locked_until > now)
        .order_by(LoginThrottle.locked_until.desc())
        .limit(1)
    )
    if locked_until is not None:
        raise SignInThrottledError(locked_until - now)


def record_failure(
    session: Session, keys: SignInKeys, now: int, policy: ThrottlePolicy = POLICY
) -> int | None:
    """Count a failed attempt against its three keys; the longest lock one of them is
    now under (seconds), or None."""
    forget_expired(session, now)
    locks = [
        _count_failure(session, key, threshold, now, policy)
        for key, threshold in (
            (keys.pair, policy.pair_threshold),
            (keys.address, policy.address_threshold),
            (keys.account, policy.account_threshold),
        )
    ]
    return max((lock for lock in locks if lock is not None), default=None)


def record_success(session: Session, keys: SignInKeys) -> None:
    """A successful sign-in: the failures of the account from this address are forgotten."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys.pair))


def forget_expired(session: Session, now: int) -> int:
    """Delete the keys nothing is counted or locked for any more; returns how many."""
    result = session.execute(delete(LoginThrottle).where(LoginThrottle.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


def _count_failure(
    session: Session, key: str, threshold: int, now: int, policy: ThrottlePolicy
) -> int | None:
    """One more failure for ``key`` (a fresh count if it had expired); locks it at the threshold."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    expired = LoginThrottle.expires_at <= now
    statement = (
        insert(LoginThrottle)
        .values(key=key, failures=1, locked_until=None, expires_at=now + policy.window_seconds)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((expired, 1), else_=LoginThrottle.failures + 1),
                "locked_until": case((expired, None), else_=LoginThrottle.locked_until),
                "expires_at": now + policy.window_seconds,
            },
        )
        .returning(LoginThrottle.failures)
    )
    failures = int(session.execute(statement).scalar_one())
    lock = policy.lock_seconds(failures, threshold)
    if lock is not None:
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(locked_until=now + lock, expires_at=now + lock + policy.window_seconds)
        )
    return lock


def _network(address: str) -> str:
    """The client's address as counted: an IPv4 address, or the /64 of an IPv6 one."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _digest(secret: bytes, kind: str, value: str) -> str:
    message = f"{kind}\x00{value}".encode("utf-8", "replace")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
