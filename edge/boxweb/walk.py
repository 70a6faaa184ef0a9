"""The walk test page's view of the panel stage (JSON-ready dictionaries)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edge.inputs.panel import Panel


class WalkTestView:
    def __init__(self, panel: Panel) -> None:
        self.panel = panel

    def start_walk(self, duration_s: float) -> dict[str, Any]:
        return asdict(self.panel.start_walk(duration_s))

    def walk_status(self) -> dict[str, Any] | None:
        status = self.panel.walk_status()
        return None if status is None else asdict(status)

    async def stop_walk(self, ended_by: str = "stopped") -> dict[str, Any] | None:
        result = await self.panel.stop_walk(ended_by)
        return None if result is None else asdict(result)
