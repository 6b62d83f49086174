"""Shared plumbing: atomic file writes, the distributed set-up, figures and overlays."""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "atomic_write": "atomic",
        "atomic_write_text": "atomic",
        "OverlayVideoWriter": "viz",
        "overlay_mask": "viz",
        "plot_sequence_scores": "viz",
    },
)
