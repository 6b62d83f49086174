"""The engine equals the dense docs/method.md §7 reference on real DAVIS frames with real ViT features, any preset.

Random-init backbones (a tiny ViT and ViT-S/8) run in float64 through :class:`ino.propagation.features.FeatureExtractor`
at reduced resolution, so that agreement is pixel-exact rather than subject to float32 near-ties.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ino.models.weights import load_backbone
from ino.propagation.features import FeatureExtractor
from ino.propagation.presets import grid_size, target_size
from support.batch_path import engine_masks
from support.reference_propagation import SMALL, load_sequence, reference_mask, reference_soft

# Smaller frames than the conv tests: ViT-S/8 in float64 costs about 1 s per frame at 20 x 35 cells.
VIT_SIZES = {
    "ino-davis": dataclasses.replace(SMALL["ino-davis"], short_side=120, radius=3),
    "ino-ytvos": SMALL["ino-ytvos"],
    "dino-davis": dataclasses.replace(SMALL["dino-davis"], short_side=128, radius=3),
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vit_tiny", "vit_small"])
@pytest.mark.parametrize(
    ("preset", "sequence"), [("ino-davis", "rollerblade"), ("ino-ytvos", "tennis"), ("dino-davis", "hockey")]
)
def test_vit_features_propagate_exactly_as_the_reference(
    davis_dev: Path, arch: str, preset: str, sequence: str
) -> None:
    config = VIT_SIZES[preset]
    frames, first = load_sequence(davis_dev, sequence, 6, preset, ytvos_size=(208, 120))
    original_hw = first.shape
    target_hw = target_size(*original_hw, config)
    backbone = load_backbone("random", arch=arch, patch_size=8, seed=3).double()
    extractor = FeatureExtractor(backbone, config, device="cpu", batch_size=3)
    features = list(extractor(frames))
    assert features[0].dtype == torch.float64
    assert features[0].shape == (backbone.embed_dim, *grid_size(target_hw, config))
    masks = {0: first}
    if preset == "ino-ytvos":
        late = np.zeros_like(first)
        late[10:60, 20:110] = 2  # an object that appears at frame 3 and starts its own chain
        masks[3] = late
    expected = [reference_mask(s, target_hw, original_hw) for s in reference_soft(features, masks, config)]
    engine = engine_masks(features, masks, dataclasses.replace(config, chunk_size=64))
    np.testing.assert_array_equal(engine[0], first)
    for t in range(1, len(engine)):
        ids, ties = expected[t]
        assert ties.mean() < (0.01 if t >= 3 and preset == "ino-ytvos" else 1e-12), f"frame {t}"
        np.testing.assert_array_equal(np.where(ties, 0, engine[t]), np.where(ties, 0, ids), err_msg=f"frame {t}")
    assert all((m == 1).any() for m in engine[1:])


def test_batched_features_equal_frame_by_frame(davis_dev: Path) -> None:
    config = VIT_SIZES["ino-davis"]
    frames, _ = load_sequence(davis_dev, "surf", 4, "ino-davis")
    backbone = load_backbone("random", arch="vit_tiny", patch_size=8, seed=1)
    single = list(FeatureExtractor(backbone, config, device="cpu", batch_size=1)(frames))
    batched = list(FeatureExtractor(backbone, config, device="cpu", batch_size=3)(frames))
    assert len(single) == len(batched) == 4
    for a, b in zip(single, batched, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
