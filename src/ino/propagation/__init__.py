"""Label propagation (docs/method.md §7, §9): presets, features, the engine, the streaming API and runs on disk.

- :mod:`~ino.propagation.presets`: :class:`PropagationConfig` and the published protocols (torch-free).
- :mod:`~ino.propagation.features`: frames to backbone features (preprocessing, batches, background decoding).
- :mod:`~ino.propagation.engine`: :class:`LabelPropagator`, features and soft labels to soft labels.
- :mod:`~ino.propagation.api`: :class:`VideoPropagator` (frame in, ids out) and :func:`propagate_video`.
- :mod:`~ino.propagation.runs`: DAVIS, YouTube-VOS and video-file runs, resumable, written atomically.
- :mod:`~ino.propagation.grid_ceiling` and :mod:`~ino.propagation.baselines`: what perfect features and no motion score.
"""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "PRESETS": "presets",
        "PropagationConfig": "presets",
        "resolve_config": "presets",
        "target_size": "presets",
        "grid_size": "presets",
        "FeatureExtractor": "features",
        "preprocess": "features",
        "LabelPropagator": "engine",
        "first_frame_labels": "engine",
        "labels_to_mask": "engine",
        "VideoPropagator": "api",
        "propagate_video": "api",
        "propagate_davis": "runs",
        "propagate_ytvos": "runs",
        "propagate_video_file": "runs",
        "write_grid_ceiling": "grid_ceiling",
        "write_first_frame_baseline": "baselines",
    },
)
