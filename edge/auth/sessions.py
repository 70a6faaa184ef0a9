"""Sessions that expire (idle and absolute), each with its CSRF token.

A session id is an opaque random string kept in an HttpOnly cookie by the web
adapter; the CSRF token is the session's second secret, handed to the page's
script and sent back in a header with every state-changing request. Times are
the caller's monotonic seconds.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

IDLE_S = 1800.0  # 30 min without a request
MAX_S = 43_200.0  # 12 h after the login, however busy: a shift
MAX_SESSIONS = 1000  # past this, the least recently used are dropped


@dataclass
class Session:
    user: str
    role: str
    csrf: str
    created_s: float
    last_seen_s: float


@dataclass
class Sessions:
    """Session id -> :class:`Session`. One expires ``idle_s`` after its last use or
    ``max_s`` after its login, whichever comes first."""

    idle_s: float = IDLE_S
    max_s: float = MAX_S
    by_id: dict[str, Session] = field(default_factory=dict)

    def create(self, now: float, user: str = "", role: str = "") -> tuple[str, Session]:
        self.expire(now)
        while len(self.by_id) >= MAX_SESSIONS:
            oldest = min(self.by_id, key=lambda sid: self.by_id[sid].last_seen_s)
            del self.by_id[oldest]
        sid = secrets.token_urlsafe(32)
        session = Session(user, role, secrets.token_urlsafe(32), now, now)
        self.by_id[sid] = session
        return sid, session

    def get(self, sid: str | None, now: float) -> Session | None:
        """The live session of ``sid``, marked used now; None (and forgotten) when expired."""
        session = self.peek(sid, now)
        if session is not None:
            session.last_seen_s = now
        return session

    def peek(self, sid: str | None, now: float) -> Session | None:
        """The live session of ``sid``, not marked used (a long-lived stream checking)."""
        if not sid:
            return None
        session = self.by_id.get(sid)
        if session is None:
            return None
        if self._expired(session, now):
            del self.by_id[sid]
            return None
        return session

    def active(self, now: float) -> list[Session]:
        """Every live session, oldest login first."""
        self.expire(now)
        return sorted(self.by_id.values(), key=lambda s: s.created_s)

    def drop(self, sid: str | None) -> None:
        if sid:
            self.by_id.pop(sid, None)

    def drop_user(self, user: str) -> None:
        for sid in [k for k, s in self.by_id.items() if s.user == user]:
            del self.by_id[sid]

    def drop_all(self) -> None:
        self.by_id.clear()

    def expire(self, now: float) -> None:
        for sid in [k for k, s in self.by_id.items() if self._expired(s, now)]:
            del self.by_id[sid]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen_s > self.idle_s or now - session.created_s > self.max_s


def same_secret(given: str | None, wanted: str | None) -> bool:
    """Constant-time equality of two tokens; False when either is missing."""
    if not given or not wanted:
        return False
    return hmac.compare_digest(given.encode(), wanted.encode())
