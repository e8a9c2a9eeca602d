"""Password hashes for the simple sign-in of a team server without an identity provider.

Only hashes are stored (in ``.streamlit/secrets.toml``): PBKDF2-HMAC-SHA256 with a random salt, written as
``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``. ``python -m core hash-password`` prints one.
Checks compare in constant time (hmac.compare_digest), and an unknown name costs as much as a wrong password.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from core.errors import SettingsError

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
MIN_ITERATIONS = 1_000
SALT_BYTES = 16
MIN_PASSWORD_LENGTH = 8

# Checked against when a name is unknown, so that the answer takes as long as for a known name.
_DUMMY = f"{SCHEME}${ITERATIONS}${'00' * SALT_BYTES}${'00' * 32}"


class PasswordSettingError(SettingsError):
    """A stored password entry is not a hash this module wrote; the message says how to make one."""


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The string to store for ``password``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SettingsError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def _parse(stored: str) -> tuple[int, bytes, bytes]:
    parts = str(stored).strip().split("$")
    try:
        if len(parts) != 4 or parts[0] != SCHEME:
            raise ValueError
        iterations, salt, digest = int(parts[1]), bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        raise PasswordSettingError(
            f"a stored password is not a {SCHEME} hash: store the line `python -m core hash-password` prints, "
            "never the password itself") from None
    if iterations < MIN_ITERATIONS or not salt or len(digest) != 32:
        raise PasswordSettingError(f"a stored password hash is too weak or damaged (at least {MIN_ITERATIONS} "
                                   "iterations and a salt): make a new one with `python -m core hash-password`")
    return iterations, salt, digest


def check_stored(stored: str) -> None:
    """Raise PasswordSettingError when ``stored`` is not a usable hash (a plain-text password, say)."""
    _parse(stored)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (constant-time comparison)."""
    iterations, salt, digest = _parse(stored)
    candidate = hashlib.pbkdf2_hmac("sha256", str(password).encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


def check_sign_in(name: str, password: str, hashes: dict[str, str]) -> str | None:
    """The person's name as configured when ``name`` (case-insensitive) and ``password`` match an entry of
    ``hashes`` ({name: stored hash}); None otherwise. Unknown names are checked against a dummy hash."""
    wanted = str(name).strip().casefold()
    match = next((known for known in hashes if str(known).casefold() == wanted), None) if wanted else None
    stored = hashes[match] if match is not None else _DUMMY
    ok = verify_password(password, stored)
    return str(match) if ok and match is not None else None


class SignInThrottle:
    """Server-wide brake on password guessing: after ``limit`` failed sign-ins for one name (known or not) within
    ``window_s`` seconds, that name is refused for ``lockout_s`` seconds, whatever the password. Thread-safe."""

    def __init__(self, limit: int = 5, window_s: float = 600.0, lockout_s: float = 600.0, clock=None):
        import threading
        import time
        self.limit, self.window_s, self.lockout_s = limit, window_s, lockout_s
        self._clock = clock or time.monotonic
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return str(name).strip().casefold()[:200]

    def wait_s(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        with self._lock:
            return max(0.0, self._locked_until.get(self._key(name), 0.0) - self._clock())

    def failed(self, name: str) -> None:
        key, now = self._key(name), self._clock()
        with self._lock:
            recent = [moment for moment in self._failures.get(key, []) if now - moment < self.window_s] + [now]
            self._failures[key] = recent
            if len(recent) >= self.limit:
                self._locked_until[key] = now + self.lockout_s
                self._failures[key] = []

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(self._key(name), None)
