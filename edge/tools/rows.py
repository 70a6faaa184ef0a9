"""Machine-readable output of the tools: JSON lines or CSV, one row per fact."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

FORMATS = ("jsonl", "csv")


class Rows:
    """Write rows (dicts) as JSON lines, or as CSV with a header of ``columns``."""

    def __init__(self, fmt: str, columns: Sequence[str], out: TextIO | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.columns = list(columns)
        self.out = out or sys.stdout
        self.count = 0
        self._csv: Any = None
        if fmt == "csv":
            self._csv = csv.writer(self.out, lineterminator="\n")
            self._csv.writerow(self.columns)

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self._csv is None:
            self.out.write(json.dumps(row, separators=(",", ":")) + "\n")
            return
        self._csv.writerow([_cell(row.get(c)) for c in self.columns])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
