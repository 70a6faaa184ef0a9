"""Roles as a ladder: each may do what the roles below it may."""

from __future__ import annotations

from dataclasses import dataclass

from edge.auth.errors import AuthError


@dataclass(frozen=True)
class Roles:
    """Role names from the least to the most trusted, e.g. ``("operator", "supervisor")``."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError("roles: at least one, each once")

    @property
    def lowest(self) -> str:
        return self.names[0]

    def parse(self, name: str) -> str:
        """``name`` when it is a role; AuthError naming the roles otherwise."""
        if name not in self.names:
            raise AuthError(f"role {name!r}: one of {', '.join(self.names)}")
        return name

    def permits(self, role: str, needed: str) -> bool:
        """True when ``role`` may do what ``needed`` may. An unknown role may do nothing."""
        if role not in self.names:
            return False
        return self.names.index(role) >= self.names.index(self.parse(needed))
