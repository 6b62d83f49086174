"""DAVIS-2017 semi-supervised J&F (docs/method.md §8): exact measures, a parallel scorer and its report files.

Nothing here imports torch: ``ino evaluate`` starts in a fraction of a second.
"""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Evaluation": "scorer",
        "SequenceScores": "scorer",
        "evaluate": "scorer",
        "format_tables": "report",
        "write_outputs": "report",
    },
)
