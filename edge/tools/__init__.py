"""Field tools: the box's own stages run offline on what it recorded (``edge diag ...``).

One module per tool; each drives the same code as the live box (zones, motion
stage, camera pipeline, wire protocol, DC-09 codec) and prints machine-readable
rows (:mod:`edge.tools.rows`) with a short summary on stderr.
"""

START_WALL_S = 1_800_000_000.0  # a file's first frame, unless told: 2027-01-15T08:00:00Z
