"""The VIP run: 20 soft labels from the first annotated frame (255 in no channel), every annotated frame written at
the ground truth's size and nothing else, from the first annotated frame on; the real engine on features that
match each cell to itself gives that frame's round trip on every annotated frame, bit for bit; classes absent from
the first frame are never predicted; a missing frame stops the run before any work.

The data are ``ino synth --format vip`` videos (every 2nd frame annotated; the last video has one annotated frame;
gloves, dress, socks and torso-skin are never drawn).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ino.data.synthetic_vip import NEVER_DRAWN, SynthVipConfig, write_vip_benchmark
from ino.data.vip import IGNORE_ID, N_CLASSES, VipLayout, read_category_ids, read_prediction_ids
from ino.errors import InoError
from ino.evaluation.vip import evaluate_vip
from ino.models.weights import load_backbone
from ino.propagation.api import VideoPropagator
from ino.propagation.engine import labels_to_mask
from ino.propagation.part_runs import part_labels, propagate_vip
from ino.propagation.presets import PropagationConfig, resolve_config

SMALL = resolve_config("ino-davis", short_side=64)  # 60 x 100 frames -> 64 x 104, an 8 x 13 grid


@pytest.fixture(scope="module")
def vip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vip")
    write_vip_benchmark(root, videos=3, config=SynthVipConfig(height=60, width=100, frames=7, key_every=2), seed=4)
    return root


class PositionFeatures:
    """Features that are the one-hot of each grid cell's index: each cell matches itself, in every frame, only."""

    def __init__(self, propagator: VideoPropagator) -> None:
        self.propagator = propagator

    def __call__(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        for frame in frames:
            _, (h, w) = self.propagator.geometry(frame.shape[0], frame.shape[1])
            yield torch.eye(h * w).reshape(h * w, h, w)


def copying_propagator(config: PropagationConfig) -> VideoPropagator:
    propagator = VideoPropagator(None, config, topk=1, n_last_frames=0)
    propagator.extractor = PositionFeatures(propagator)  # type: ignore[assignment]
    return propagator


@pytest.mark.parametrize("downsampling", ["bilinear", "nearest"])
def test_part_labels_give_255_no_channel_and_absent_classes_zero(downsampling: str) -> None:
    config = resolve_config(SMALL, label_downsampling=downsampling)
    ids = np.zeros((16, 24), dtype=np.uint8)
    ids[:, 8:16] = 7
    ids[:, 16:] = IGNORE_ID
    labels = part_labels(ids, (2, 3), config)
    assert labels.shape == (N_CLASSES, 2, 3)
    sums = labels.sum(dim=0)
    assert torch.allclose(sums[:, :2], torch.ones(2, 2)) and (sums[:, 2] == 0).all()  # the 255 column: no label
    assert labels[[c for c in range(N_CLASSES) if c not in (0, 7)]].abs().sum() == 0
    assert (labels[0, :, 0] == 1).all() and (labels[7, :, 1] == 1).all()


def test_each_annotated_frame_from_the_first_annotated_one_is_its_round_trip_under_a_copying_matcher(
    vip: Path, tmp_path: Path
) -> None:
    root = tmp_path / "vip"
    write_vip_benchmark(root, videos=3, config=SynthVipConfig(height=60, width=100, frames=7, key_every=2), seed=4)
    layout = VipLayout(root)
    names = layout.videos()
    late = names[0]
    (layout.annotation_root / late / "000000000001.png").unlink()  # its propagation now starts at frame 3
    out = tmp_path / "out"
    assert propagate_vip(root, out, copying_propagator(SMALL), {"preset": "x"}, progress=False) == names
    for name in names:
        video = layout.video(name)
        assert sorted(p.name for p in (out / name).glob("*.png")) == [p.name for p in video.annotations]
        first = read_category_ids(video.annotations[0])
        target, grid = copying_propagator(SMALL).geometry(*first.shape)
        expected = labels_to_mask(part_labels(first, grid, SMALL), target, first.shape, SMALL)
        for annotation in video.annotations:
            np.testing.assert_array_equal(read_prediction_ids(out / name / annotation.name), expected)
    assert layout.video(names[-1]).annotated == ("000000000001",)  # one annotated frame, one prediction
    assert layout.video(late).first_annotated == "000000000003"
    state = json.loads((out / ".ino-propagate.json").read_text())
    assert state["settings"]["max_frames"] is None and state["finished"] == names


def test_classes_absent_from_the_first_frame_are_never_predicted(vip: Path, tmp_path: Path) -> None:
    model = load_backbone("random", arch="vit_tiny", patch_size=16, seed=1)
    propagator = VideoPropagator(model, SMALL, device="cpu")
    out = tmp_path / "out"
    names = propagate_vip(vip, out, propagator, {"preset": "x"}, max_frames=5, progress=False)
    layout = VipLayout(vip)
    for name in names:
        video = layout.video(name)
        present = set(np.unique(read_category_ids(video.annotations[0]))) - {IGNORE_ID}
        written = sorted((out / name).glob("*.png"))
        assert [p.stem for p in written] == [p.stem for p in video.annotations if int(p.stem) <= 5]
        for path in written:
            ids = read_prediction_ids(path)
            assert ids.shape == read_category_ids(video.annotations[0]).shape  # the ground truth's size
            assert set(np.unique(ids)) <= present | {0}
            assert not set(np.unique(ids)) & set(NEVER_DRAWN)
    evaluation = evaluate_vip(vip, out, videos=names, max_frames=5)
    assert evaluation.protocol["max_frames"] == 5 and evaluation.protocol["n_frames"] == 3 + 3 + 1
    assert 0 < evaluation.miou() < 1


def test_a_missing_frame_stops_before_any_work_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "vip"
    config = SynthVipConfig(height=60, width=100, frames=5, key_every=2, missing_frame=True)
    write_vip_benchmark(root, videos=2, config=config, seed=1)
    out = tmp_path / "out"
    with pytest.raises(InoError, match=r"videos1.*has no frame .*Images/videos1/000000000005\.jpg") as caught:
        propagate_vip(root, out, copying_propagator(SMALL), {"preset": "x"}, progress=False)
    assert "\n" not in str(caught.value)
    assert not out.exists()
