"""Small readers the tests use to inspect what the package wrote."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from safetensors import safe_open


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The metadata header of a safetensors file (empty when it has none)."""
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def all_finite(data: Any) -> bool:
    """True when every number inside nested report data is finite."""
    if isinstance(data, dict):
        return all(all_finite(v) for v in data.values())
    if isinstance(data, (list, tuple)):
        return all(all_finite(v) for v in data)
    if isinstance(data, float):
        return math.isfinite(data)
    return True
