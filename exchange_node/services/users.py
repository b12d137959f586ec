"""People who sign in to the web app: adding, listing, disabling, and checking passwords.

Passwords are stored as argon2id hashes (argon2-cffi's defaults) and never
logged or returned. This module does not know about sessions or cookies; the
web app calls :func:`verify_password` and decides what a signed-in user may do.
Adding and disabling are audited under the user's numeric id, never the e-mail address.
"""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange_node.db.models import User
from exchange_node.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from exchange_node.services import audit

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "add_user",
    "check_password_rules",
    "disable_user",
    "get_user",
    "list_users",
    "normalize_email",
    "verify_password",
]

ROLES = ("admin", "staff")
MIN_PASSWORD_LENGTH = 12
#: Long enough for any passphrase, short enough that hashing it is not a denial of service.
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254

# One "@", a dot in the domain, no spaces or control characters: a sanity check, not RFC 5322.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so both cases cost the same."""
    return _hasher.hash("not the password of anyone")


def normalize_email(email: str) -> str:
    """``email`` stripped and lower-cased, if it looks like an address.

    Raises:
        InvalidRequestError: it does not look like an e-mail address.
    """
    normalized = email.strip().lower()
    if len(normalized) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(normalized):
        raise InvalidRequestError(
            f"{email.strip()!r} is not an e-mail address: give one like name@example.org",
            {"email": "not an e-mail address"},
        )
    return normalized


def check_password_rules(email: str, password: str) -> None:
    """Refuse a password that is too short, too long, or the e-mail address itself.

    Raises:
        InvalidRequestError: the password breaks a rule; the message says which.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        problem = f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    elif len(password) > MAX_PASSWORD_LENGTH:
        problem = f"the password must have at most {MAX_PASSWORD_LENGTH} characters"
    elif password.strip().lower() == normalize_email(email):
        problem = "the password must not be the e-mail address"
    else:
        return
    raise InvalidRequestError(f"{problem}: choose another", {"password": problem})


def add_user(
    session: Session, email: str, role: str, password: str, now: int, *, actor: str = "cli"
) -> User:
    """A new, enabled user with an argon2id hash of ``password``.

    Raises:
        InvalidRequestError: a bad e-mail address, role or password.
        ConflictError: a user with this e-mail address exists.
    """
    email = normalize_email(email)
    if role not in ROLES:
        raise InvalidRequestError(
            f"unknown role {role!r}: choose one of {', '.join(ROLES)}", {"role": "unknown"}
        )
    check_password_rules(email, password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise _duplicate(email)
    user = User(
        email=email, role=role, password_hash=_hasher.hash(password), disabled=False, created_at=now
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as e:  # added by someone else since the check above
        raise _duplicate(email) from e
    audit.record(
        session,
        actor=actor,
        action="user.added",
        subject=str(user.id),
        details={"role": role},
        now=now,
    )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def get_user(session: Session, email: str) -> User:
    """The user with this e-mail address.

    Raises:
        NotFoundError: there is none.
    """
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFoundError(f"no user {email.strip()}: see 'exchange-node user list'")
    return user


def disable_user(session: Session, email: str, now: int, *, actor: str = "cli") -> User:
    """Stop a user from signing in; the record stays. Disabling twice changes nothing.

    Raises:
        NotFoundError: no user has this e-mail address.
    """
    user = get_user(session, email)
    if not user.disabled:
        user.disabled = True
        audit.record(
            session,
            actor=actor,
            action="user.disabled",
            subject=str(user.id),
            now=now,
        )
    return user


def verify_password(session: Session, email: str, password: str) -> User:
    """The enabled user with this e-mail address and password.

    An unknown address costs one hash verification, like a known one, so timing
    does not tell which addresses have accounts.

    Raises:
        AuthenticationError: unknown address, wrong password, or a disabled account.
    """
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or len(password) > MAX_PASSWORD_LENGTH:
        _matches(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        raise AuthenticationError("wrong e-mail address or password")
    if not _matches(user.password_hash, password):
        raise AuthenticationError("wrong e-mail address or password")
    if user.disabled:
        raise AuthenticationError("this account is disabled: ask an administrator")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _duplicate(email: str) -> ConflictError:
    return ConflictError(
        f"a user {email} already exists: see 'exchange-node user list'", {"email": "taken"}
    )
