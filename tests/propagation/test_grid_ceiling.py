"""The grid ceiling: ground truth through the feature grid, what perfect correspondences would score."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ino.data.davis import read_mask
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.evaluation.scorer import evaluate
from ino.propagation.grid_ceiling import through_grid, write_grid_ceiling
from ino.propagation.presets import resolve_config


def _ids() -> np.ndarray:
    ids = np.zeros((64, 96), dtype=np.uint8)
    ids[10:40, 20:70] = 1  # a block several cells wide
    ids[:, 47:49] = 2  # a 2 px bar between the grid's sample columns (x = 43.2 and 51.8), in front of it
    return ids


def test_a_grid_as_fine_as_the_frame_loses_nothing() -> None:
    config = resolve_config("ino-davis", short_side=64, patch_size=1, size_multiple=1)
    assert np.array_equal(through_grid(_ids(), config), _ids())


def test_a_coarse_grid_loses_thin_parts_and_keeps_large_ones() -> None:
    config = resolve_config("ino-davis", short_side=64, patch_size=8, size_multiple=8)
    out = through_grid(_ids(), config)
    assert out.shape == (64, 96)
    assert not (out == 2).any()  # no point sample of the 8x12 grid falls on it
    block = _ids() == 1
    overlap = ((out == 1) & block).sum() / ((out == 1) | block).sum()
    assert overlap > 0.6


def test_ceiling_folder_scores_like_a_result_and_falls_with_the_grid(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    names = write_benchmark(root, 2, SynthConfig(height=72, width=128, frames=5), seed=3)
    scores = {}
    for side in (72, 288):
        config = resolve_config("ino-davis", short_side=side, patch_size=16, size_multiple=16)
        out = tmp_path / f"ceiling-{side}"
        assert write_grid_ceiling(root, out, config) == names
        for name in names:
            written = sorted(p.name for p in (out / name).glob("*.png"))
            assert written == sorted(p.name for p in (root / "Annotations" / "480p" / name).glob("*.png"))
            assert read_mask(out / name / written[0]).shape == (72, 128)
        scores[side] = evaluate(root, out, sequences=names).global_results()["J&F-Mean"]
    assert 0.0 < scores[72] < scores[288] <= 1.0
