"""Whether a state-changing request may go on: its Origin (or Referer) and CSRF token.

Pure functions of the request's headers, for every web adapter: the box's
page and the station's operator page refuse the same requests for the same
reasons, with the same words.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from urllib.parse import urlsplit

from edge.auth.sessions import Session, same_secret

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"


class Refusal(StrEnum):
    """Why a request is refused (403); the value is the answer's text."""

    CROSS_SITE = "cross-site request refused"
    CSRF = "missing or wrong CSRF token"


def origin_of(scheme: str, host: str) -> str:
    """``scheme://host[:port]`` as browsers spell it in ``Origin``."""
    return f"{scheme}://{host}".lower()


def same_origin(origin: str | None, referer: str | None, allowed: Collection[str]) -> bool:
    """True unless the request says it comes from a page not in ``allowed``.

    ``Origin`` when the browser sends one (``null`` is never allowed), else the
    origin of ``Referer``. A request with neither is not a browser's cross-site
    request (browsers send ``Origin`` with every POST): it passes here and meets
    the CSRF token.
    """
    wanted = {a.lower().rstrip("/") for a in allowed}
    if origin is not None:
        return origin.lower() in wanted
    if referer is None:
        return True
    try:
        parts = urlsplit(referer)
        port = parts.port
    except ValueError:  # a port out of range, a bad IPv6 literal
        return False
    if not parts.scheme or not parts.hostname:
        return False
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    host = name if port is None else f"{name}:{port}"
    return f"{parts.scheme}://{host}".lower() in wanted


def refusal(
    method: str,
    session: Session | None,
    token: str | None,
    origin: str | None,
    referer: str | None,
    allowed: Collection[str],
    *,
    public: bool = False,
) -> Refusal | None:
    """Why a request must be refused, or None.

    Reading (GET, HEAD, OPTIONS) always passes. A state change needs an allowed
    origin and, unless the route is ``public`` (the login itself), a live
    ``session`` whose CSRF token is ``token``: no session, no token, a wrong one
    are all refused.
    """
    if method.upper() not in UNSAFE:
        return None
    if not same_origin(origin, referer, allowed):
        return Refusal.CROSS_SITE
    if public:
        return None
    if session is None or not same_secret(token, session.csrf):
        return Refusal.CSRF
    return None
