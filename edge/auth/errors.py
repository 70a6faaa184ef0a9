"""The one error of web authentication."""

from __future__ import annotations

from edge.errors import EdgeError


class AuthError(EdgeError):
    """A password that cannot be set, a stored hash or lockout that cannot be read or
    written, a role that does not exist."""
