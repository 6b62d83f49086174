"""Periodic DAVIS J&F during training: propagate with the current student backbone and score it.

This is how INO is judged, so it is the curve worth watching; it runs on the main rank between steps. At a
short side below 480, or with patches larger than 8, the window radius is scaled (it counts feature cells),
so that the window covers the same part of the frame as the protocol's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ino.evaluation.scorer import evaluate
from ino.models.vit import InoViT
from ino.propagation.api import VideoPropagator
from ino.propagation.presets import for_patch_size, resolve_config
from ino.propagation.runs import propagate_davis
from ino.utils.outputs import renew


def davis_jf(
    backbone: InoViT,
    davis_root: str | Path,
    out_dir: Path,
    device: torch.device,
    short_side: int = 480,
    sequences: list[str] | None = None,
) -> dict[str, float]:
    """J&F-Mean, J-Mean and F-Mean of ``backbone`` on a DAVIS-layout folder with the ``ino-davis`` protocol."""
    base = resolve_config("ino-davis")
    radius = max(1, round(base.radius * short_side / 480 * base.patch_size / backbone.patch_size))
    config = for_patch_size(resolve_config(base, short_side=short_side, radius=radius), backbone.patch_size)
    model = copy.deepcopy(backbone).eval()  # the student stays in train mode
    propagator = VideoPropagator(model, config, device=device, batch_size=8 if device.type == "cuda" else 1)
    renew(out_dir)  # the previous evaluation's predictions go
    names = propagate_davis(davis_root, out_dir, propagator, {"eval": True}, sequences=sequences, progress=False)
    results = evaluate(davis_root, out_dir, sequences=names).global_results()
    return {f"davis_{key}": results[key] for key in ("J&F-Mean", "J-Mean", "F-Mean")}
