"""Signing in to the web app: the session cookie, the signed-in user, roles and CSRF.

The session is Flask's signed cookie. It holds the user's id, a stamp of the
password hash (a changed password or a disabled account ends every session at the
next request), a CSRF token and the chosen language; never personal data. The key
that signs it is ``session.key`` in the node's home (mode 0600), made on first use.
Cookies are ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` when the node's URL is
``https://``. Every POST to a page blueprint must carry the session's CSRF token.
This module decides who is signed in; it renders nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import User
from exchange_node.errors import ConfigurationError
from exchange_node.node import Node

SESSION_KEY_FILE = "session.key"
SESSION_HOURS = 8
CSRF_FIELD = "csrf_token"
PUBLIC_URL = "EXCHANGE_PUBLIC_URL"
_USER, _STAMP, _CSRF = "uid", "stamp", "csrf"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class SignedInUser:
    """Who is signed in to this request: enough to decide what a page shows."""

    id: int
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def init_app(app: Flask, node: Node) -> None:
    """Configure the session cookie and load the signed-in user before each request."""
    app.secret_key = load_session_key(node.settings.home / SESSION_KEY_FILE)
    app.config.update(
        # Browsers keep cookies per host, not per port: nodes side by side on 127.0.0.1
        # would overwrite each other's session. One name per node URL keeps them apart.
        SESSION_COOKIE_NAME=session_cookie_name(node.settings.url),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=node.settings.url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.config[PUBLIC_URL] = node.settings.url
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user


def session_cookie_name(url: str) -> str:
    return "exchange_session_" + hashlib.sha256(url.encode()).hexdigest()[:8]


def load_session_key(path: Path) -> bytes:
    """The 32-byte key in ``path``, made (mode 0600) when there is none.

    Raises:
        ConfigurationError: the file exists but does not hold a key, or cannot be written.
    """
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return load_session_key(path)
        except OSError as e:
            raise ConfigurationError(f"cannot write {path}: {e.strerror}") from e
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror}") from e
    if len(key) != 32:
        raise ConfigurationError(f"{path} does not hold a 32-byte key: delete it to make one")
    return key


def password_stamp(user: User) -> str:
    """Changes whenever the password hash does, so a new password ends old sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def sign_in(user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token; the language is kept)."""
    language = session.get("lang")
    session.clear()
    session.permanent = True
    session[_USER] = user.id
    session[_STAMP] = password_stamp(user)
    session[_CSRF] = secrets.token_urlsafe(32)
    if language:
        session["lang"] = language


def sign_out() -> None:
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def load_user(node: Node) -> SignedInUser | None:
    """The user of this request's session, or None; clears a session that is no longer valid."""
    if "user" in g:
        return cast(SignedInUser | None, g.user)
    user_id = session.get(_USER)
    signed_in: SignedInUser | None = None
    if isinstance(user_id, int):
        with node.database.session() as db:
            user = db.get(User, user_id)
            if (
                user is not None
                and not user.disabled
                and hmac.compare_digest(str(session.get(_STAMP, "")), password_stamp(user))
            ):
                signed_in = SignedInUser(user.id, user.email, user.role)
        if signed_in is None:
            sign_out()
    g.user = signed_in
    return signed_in


def current_user() -> SignedInUser | None:
    """The signed-in user (after :func:`load_user` ran for this request), or None."""
    return cast(SignedInUser | None, g.get("user"))


def web_actor() -> str:
    """The audit log's name for the signed-in user: ``user:<id>``, never the e-mail address.

    Raises:
        RuntimeError: nobody is signed in (a view that records must be behind
            :func:`login_required`).
    """
    user = current_user()
    if user is None:
        raise RuntimeError("no signed-in user")
    return f"user:{user.id}"


def login_required(role: str | None = None) -> Callable[[F], F]:
    """Views behind this need a signed-in user, and with ``role="admin"`` an administrator.

    Someone not signed in is sent to the sign-in page and back; a staff member on an
    administrator's page gets 403.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if role is not None and user.role != role:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def csrf_token() -> str:
    """This session's CSRF token (made on first use, also before signing in)."""
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF] = token
    return token


def check_csrf() -> None:
    """Refuse (400) an unsafe request without this session's token or from another origin."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") not in _own_origins():
        abort(400, "the form was sent from another site")
    expected = session.get(_CSRF)
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        abort(400, "the form has expired: go back, reload the page and send it again")


def _own_origins() -> set[str]:
    """This site as browsers name it: the node's public URL (behind a TLS proxy the app
    itself sees plain http) and the address the request came to."""
    origins = {request.host_url.rstrip("/")}
    public = urlsplit(current_app.config.get(PUBLIC_URL, ""))
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}")
    return origins


def safe_next(target: str | None, fallback: str) -> str:
    """``target`` when it is a path on this site, else ``fallback`` (no open redirects).

    Browsers drop tabs and newlines from URLs, so ``/\t/evil.example`` would become
    ``//evil.example``: anything not printable, a backslash or a space is refused too.
    """
    if not target or not target.isprintable() or "\\" in target or " " in target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


def redirect_to(endpoint: str, **values: Any) -> BaseResponse:
    """303 See Other: after a POST the browser GETs the page (no resubmission on reload)."""
    return redirect(url_for(endpoint, **values), code=303)
