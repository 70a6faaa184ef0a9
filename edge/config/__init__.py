"""Configuration: one validated model, loaded once."""

from edge.codes import ZoneType
from edge.config.load import format_loc, load, parse, validate
from edge.config.schema import (
    CameraConfig,
    EdgeConfig,
    InputConfig,
    UplinkConfig,
    ZoneConfig,
)

__all__ = [
    "CameraConfig",
    "EdgeConfig",
    "InputConfig",
    "UplinkConfig",
    "ZoneConfig",
    "ZoneType",
    "format_loc",
    "load",
    "parse",
    "validate",
]
