"""INO training (docs/method.md §1-§6): the step (:class:`InoMetaArch`), its losses, optimiser and schedules, the
loop with checkpoints, logs and periodic DAVIS J&F."""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "InoMetaArch": "meta_arch",
        "StepSchedule": "meta_arch",
        "InoLoss": "losses",
        "train": "loop",
        "TrainResult": "loop",
        "read_log": "log",
        "latest_checkpoint": "checkpoint",
        "load_checkpoint": "checkpoint",
    },
)
