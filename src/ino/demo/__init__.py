"""``ino demo``: INO trained on real footage within a time budget, propagation before and after, a visual report."""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {"DemoConfig": "run", "DemoResult": "run", "run_demo": "run", "write_report": "report"},
)
