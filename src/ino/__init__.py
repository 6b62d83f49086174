"""ino: INO self-supervised video segmentation -- training, label propagation and DAVIS J&F scoring.

The public API, imported lazily (``import ino`` costs milliseconds; torch loads on first use)::

    import ino
    propagator = ino.VideoPropagator("backbone.safetensors", "ino-davis")
    ids = propagator.step(frame, first_mask)          # then propagator.step(frame) for every later frame
    masks = ino.propagate_video("clip.mp4", "first.png", backbone="backbone.safetensors")
    scores = ino.evaluate("DAVIS", "results").global_results()
    ino.train(ino.load_config(["tiny"], {"data": ["videos/"], "output_dir": "runs/tiny"}))
"""

from __future__ import annotations

from ino.utils.lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, _exports = attach(
    __name__,
    {
        "InoError": "errors",
        "PropagationConfig": "ino.propagation.presets",
        "TrainConfig": "ino.configs.schema",
        "VideoPropagator": "ino.propagation.api",
        "evaluate": "ino.evaluation.scorer",
        "load_backbone": "ino.models.weights",
        "load_config": "ino.configs.loading",
        "propagate_video": "ino.propagation.api",
        "train": "ino.training.loop",
    },
)
__all__ = ["__version__", *_exports]
