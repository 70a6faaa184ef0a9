"""Web authentication shared by the box's page and the station's operator page.

Pure: no web framework, no stage. Password hashes (scrypt, one format written,
every stored one read), sessions that expire with their CSRF tokens, the
Origin check, a lockout of failed logins kept across restarts, and roles.
Each web adapter (``edge.web``, ``edge.station.web``) turns these into
aiohttp middlewares and answers.
"""

from __future__ import annotations

from edge.auth.errors import AuthError
from edge.auth.lockout import (
    MAX_CLIENTS,
    MAX_LOCK_S,
    Keeper,
    Lockout,
    LockoutFile,
    LockoutStore,
    Strikes,
)
from edge.auth.passwords import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)
from edge.auth.requests import CSRF_HEADER, UNSAFE, Refusal, origin_of, refusal, same_origin
from edge.auth.roles import Roles
from edge.auth.sessions import Session, Sessions, same_secret

__all__ = [
    "CSRF_HEADER",
    "MAX_CLIENTS",
    "MAX_LOCK_S",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "UNSAFE",
    "AuthError",
    "Keeper",
    "Lockout",
    "LockoutFile",
    "LockoutStore",
    "Refusal",
    "Roles",
    "Session",
    "Sessions",
    "Strikes",
    "check_password_rules",
    "hash_password",
    "needs_rehash",
    "origin_of",
    "refusal",
    "same_origin",
    "same_secret",
    "verify_password",
]
