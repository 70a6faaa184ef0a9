"""Which EN 50136-1 category of alarm transmission system (ATS) a box's routes reach. Pure.

EN 50136-1:2012 grades an ATS by its transmission paths and by how soon the loss
of a path is known (the reporting time), among other things this box alone
cannot decide (transmission time classes measured end to end, availability,
substitution and information security of the receiving side). What is taken
here is the reporting time each route is supervised at (its ``path_loss_s``):

========  ==================================  ======================================
category  single path (SP) or primary (DP)    secondary path (DP only)
========  ==================================  ======================================
SP1       32 days
SP2       25 h
SP3       30 min
SP4       3 min
SP5       90 s
SP6       20 s
DP1       25 h                                25 h
DP2       30 min                              25 h
DP3       3 min                               25 h
DP4       90 s                                5 h
========  ==================================  ======================================

The single-path values and the dual-path primary values are as the standard's
category tables are widely quoted; the secondary path's values (25 h, and 5 h
for DP4) and the rule that, once one path is lost, the other must be supervised
at the primary's rate, are stated with less certainty: check the standard's own
text (Tables 4 to 6) before quoting a category to a client.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY, HOUR, MINUTE = 86_400, 3_600, 60
SINGLE = (
    ("SP6", 20),
    ("SP5", 90),
    ("SP4", 3 * MINUTE),
    ("SP3", 30 * MINUTE),
    ("SP2", 25 * HOUR),
    ("SP1", 32 * DAY),
)
DUAL = (  # (category, primary, secondary)
    ("DP4", 90, 5 * HOUR),
    ("DP3", 3 * MINUTE, 25 * HOUR),
    ("DP2", 30 * MINUTE, 25 * HOUR),
    ("DP1", 25 * HOUR, 25 * HOUR),
)


@dataclass(frozen=True)
class RouteFacts:
    name: str
    path_loss_s: int
    ok: bool


def category(primary_s: int, backups_s: list[int]) -> str:
    """The best category the reporting times reach ("" if none: a path supervised more
    slowly than SP1 allows)."""
    if backups_s:
        best = min(backups_s)
        for name, primary_max, secondary_max in DUAL:
            if primary_s <= primary_max and best <= secondary_max:
                return name
    for name, limit in SINGLE:
        if primary_s <= limit:
            return name
    return ""


def summary(routes: list[RouteFacts]) -> str:
    """What the status page says: ``DP2: primary ok, 4g ok`` (``lost`` for a lost route)."""
    if not routes:
        return ""
    reached = category(routes[0].path_loss_s, [r.path_loss_s for r in routes[1:]])
    states = ", ".join(f"{r.name} {'ok' if r.ok else 'lost'}" for r in routes)
    return f"{reached}: {states}" if reached else states
