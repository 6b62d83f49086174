"""Training configurations: the schema (:mod:`ino.configs.schema`) and the YAML presets shipped beside it.

A configuration is built in one way only: the defaults, then each ``--config`` source in order (a preset name such
as ``ino-charades`` or ``ablations/loss-out-mim``, or a path to a YAML file), then dotted overrides (``{"optim":
{"base_lr": 1e-3}}``). A YAML file may name presets it builds on with ``base:`` (``demo.yaml`` builds on
``tiny``). Unknown keys, wrong types and out-of-range values end with one message naming the file and the setting.
"""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "AugmentConfig": "schema",
        "ClipConfig": "schema",
        "LossConfig": "schema",
        "MaskConfig": "schema",
        "ModelConfig": "schema",
        "OptimConfig": "schema",
        "RunConfig": "schema",
        "TrainConfig": "schema",
        "load_config": "loading",
        "preset_names": "loading",
        "read_config": "loading",
    },
)
