"""ino: INO self-supervised video segmentation (training, label propagation, DAVIS J&F scoring).

``ino.propagate_video`` is imported lazily, so ``import ino`` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "propagate_video"]


def __getattr__(name: str) -> Any:
    if name == "propagate_video":
        from ino.video_propagation import propagate_video

        return propagate_video
    raise AttributeError(f"module 'ino' has no attribute {name!r}")
