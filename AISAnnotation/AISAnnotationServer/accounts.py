"""Accounts, sessions and the server key in a SQLite database under ``--state`` (outside the dataset).

Tables: ``accounts`` (user = rater id, role, argon2id hash, disabled), ``tokens`` (SHA-256 of each
bearer token, owner, expiry, revoked) and ``failures`` (time of each failed login, for rate limiting).
Passwords are hashed with argon2id (``argon2-cffi``); a bearer token is 32 random bytes, stored only
as its SHA-256, and expires after ``ttl`` seconds (default 8 h). Disabling an account revokes its tokens.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from AISAnnotationLib import bids
from AISAnnotationLib.errors import InputError

ROLES = ("annotator", "reviewer", "arbitrator", "data-manager")
DB_NAME = "accounts.sqlite3"
KEY_NAME = "audit.key"
DEFAULT_TTL = 8 * 3600
MAX_FAILURES = 5          # failed logins per user ...
FAILURE_WINDOW = 300.0    # ... within this many seconds lock the account's login for the rest of the window
MIN_PASSWORD = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (user TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token_sha TEXT PRIMARY KEY, user TEXT NOT NULL, expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS failures (user TEXT NOT NULL, time REAL NOT NULL);
"""


class AuthError(InputError):
    """Login or token refused (``status`` 401 or 403 for the HTTP layer)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Account:
    user: str
    role: str
    disabled: bool

    def as_dict(self) -> dict:
        return {"user": self.user, "role": self.role, "disabled": self.disabled}


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_key(state: Path) -> Path:
    """The server's audit key file (32 random bytes as hex, mode 0600), created on first use."""
    state = Path(state)
    state.mkdir(parents=True, exist_ok=True)
    p = state / KEY_NAME
    if not p.is_file():
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode("ascii"))
            fh.flush()
            os.fsync(fh.fileno())
    return p


class AccountStore:
    """Thread-safe access to the accounts database (one connection per call, WAL journal)."""

    def __init__(self, state: Path, ttl: float = DEFAULT_TTL):
        from argon2 import PasswordHasher

        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        self.path = self.state / DB_NAME
        self.ttl = float(ttl)
        self._hasher = PasswordHasher()
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        os.chmod(self.path, 0o600)

    def _db(self) -> _Closing:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        return _Closing(db)

    # ----------------------------------------------------------------- accounts
    def add(self, user: str, role: str, password: str) -> Account:
        bids.validate_label(user, "user (rater id)")
        if role not in ROLES:
            raise InputError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if len(password) < MIN_PASSWORD:
            raise InputError(f"password of {user}: at least {MIN_PASSWORD} characters")
        digest = self._hasher.hash(password)
        with self._db() as db:
            try:
                db.execute("INSERT INTO accounts VALUES (?, ?, ?, 0, ?)", (user, role, digest, time.time()))
            except sqlite3.IntegrityError:
                raise InputError(f"account {user!r} already exists") from None
        return Account(user, role, False)

    def get(self, user: str) -> Optional[Account]:
        with self._db() as db:
            row = db.execute("SELECT user, role, disabled FROM accounts WHERE user=?", (user,)).fetchone()
        return Account(row[0], row[1], bool(row[2])) if row else None

    def list(self) -> list[Account]:
        with self._db() as db:
            rows = db.execute("SELECT user, role, disabled FROM accounts ORDER BY user").fetchall()
        return [Account(u, r, bool(d)) for u, r, d in rows]

    def set_disabled(self, user: str, disabled: bool = True) -> Account:
        """Disable (and revoke every token of) ``user``, or enable the account again."""
        with self._db() as db:
            n = db.execute("UPDATE accounts SET disabled=? WHERE user=?", (int(disabled), user)).rowcount
            if not n:
                raise InputError(f"no account {user!r}")
            if disabled:
                db.execute("UPDATE tokens SET revoked=1 WHERE user=?", (user,))
        acc = self.get(user)
        assert acc is not None
        return acc

    def count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])

    # ----------------------------------------------------------------- sessions
    def login(self, user: str, password: str) -> tuple[str, float, Account]:
        """(token, expiry epoch seconds, account); :class:`AuthError` on a bad or rate-limited login."""
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        now = time.time()
        with self._lock, self._db() as db:
            db.execute("DELETE FROM failures WHERE time<=?", (now - FAILURE_WINDOW,))
            fails = db.execute("SELECT COUNT(*) FROM failures WHERE user=? AND time>?",
                               (user, now - FAILURE_WINDOW)).fetchone()[0]
            if fails >= MAX_FAILURES:
                raise AuthError(f"too many failed logins for {user!r}; try again in {int(FAILURE_WINDOW)} s", 429)
            row = db.execute("SELECT role, hash, disabled FROM accounts WHERE user=?", (user,)).fetchone()
            ok = False
            if row is not None:
                try:
                    ok = self._hasher.verify(row[1], password)
                except (VerifyMismatchError, VerificationError, InvalidHashError):
                    ok = False
            else:
                self._hasher.hash(password)  # same cost whether or not the user exists
            if not ok:
                db.execute("INSERT INTO failures VALUES (?, ?)", (user, now))
                raise AuthError("wrong user or password")
            if row[2]:
                raise AuthError(f"account {user!r} is disabled", 403)
            db.execute("DELETE FROM failures WHERE user=?", (user,))
            token = secrets.token_urlsafe(32)
            expires = now + self.ttl
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, 0)", (_sha(token), user, expires))
        return token, expires, Account(user, row[0], False)

    def issue(self, user: str) -> str:
        """A session token for ``user`` without a password: for the owner of the state folder only (``serve
        --open`` signs the person at the laptop in). :class:`AuthError` when the account is unknown/disabled."""
        account = self.get(user)
        if account is None:
            raise AuthError(f"no account {user!r} (ais-annotate accounts add …)")
        if account.disabled:
            raise AuthError(f"account {user!r} is disabled", 403)
        token = secrets.token_urlsafe(32)
        with self._db() as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, 0)", (_sha(token), user, time.time() + self.ttl))
        return token

    def identify(self, token: str) -> Account:
        """The account a bearer token belongs to; :class:`AuthError` when unknown/expired/revoked/disabled."""
        with self._db() as db:
            row = db.execute("SELECT t.user, t.expires, t.revoked, a.role, a.disabled FROM tokens t "
                             "JOIN accounts a ON a.user = t.user WHERE t.token_sha=?", (_sha(token),)).fetchone()
        if row is None:
            raise AuthError("unknown token; log in again")
        user, expires, revoked, role, disabled = row
        if disabled:
            raise AuthError(f"account {user!r} is disabled", 403)
        if revoked:
            raise AuthError("token revoked; log in again")
        if expires < time.time():
            raise AuthError("token expired; log in again")
        return Account(user, role, False)

    def live(self, user: str, tokens: list[str]) -> list[str]:
        """Those of ``tokens`` (in their order) that still identify ``user``: not revoked, not expired, account
        enabled (tokens are stored only as hashes, so the caller names the tokens it holds)."""
        if not tokens:
            return []
        shas = [_sha(t) for t in tokens]
        with self._db() as db:
            rows = db.execute("SELECT t.token_sha FROM tokens t JOIN accounts a ON a.user = t.user WHERE t.user=? "
                              "AND t.revoked=0 AND a.disabled=0 AND t.expires>=? AND t.token_sha IN "
                              f"({','.join('?' * len(shas))})", (user, time.time(), *shas)).fetchall()
        ok = {r[0] for r in rows}
        return [t for t, h in zip(tokens, shas) if h in ok]

    def revoke(self, token: str) -> None:
        with self._db() as db:
            db.execute("UPDATE tokens SET revoked=1 WHERE token_sha=?", (_sha(token),))

    def expire_all(self, user: str) -> None:
        """Test and admin hook: make every token of ``user`` already expired."""
        with self._db() as db:
            db.execute("UPDATE tokens SET expires=? WHERE user=?", (time.time() - 1, user))


class _Closing:
    """``with`` wrapper closing the sqlite connection (sqlite3's own context manager only commits)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc) -> None:
        self.db.close()
