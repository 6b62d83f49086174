"""The streaming API: ``VideoPropagator.step`` frame by frame equals the batch path, mask for mask, on real frames.

The batch path (``support.batch_path``: a whole video's features, computed several frames per backbone pass, then
the engine) is what ``ino propagate`` ran before the streaming API existed. Random-init ViTs run in float64 at
reduced resolution, so that equality is exact rather than subject to float32 near-ties.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import ino
from ino.errors import InoError
from ino.models.vit import InoViT
from ino.models.weights import load_backbone
from ino.propagation.api import VideoPropagator, propagate_video
from ino.propagation.engine import LabelPropagator, labels_to_mask
from ino.propagation.features import FeatureExtractor
from ino.propagation.presets import target_size
from support.batch_path import batch_path
from support.reference_propagation import SMALL, load_sequence, reference_mask, reference_soft

SIZES = {
    "ino-davis": dataclasses.replace(SMALL["ino-davis"], short_side=120, radius=3),
    "ino-ytvos": SMALL["ino-ytvos"],
    "dino-davis": dataclasses.replace(SMALL["dino-davis"], short_side=128, radius=3),
}


def backbone(seed: int = 3) -> torch.nn.Module:
    return load_backbone("random", arch="vit_tiny", patch_size=8, seed=seed).double()


def late_object(first: np.ndarray) -> np.ndarray:
    """A new object (id 2) that appears later; the same mask shows old id 1 elsewhere, which must be ignored."""
    late = np.zeros_like(first)
    late[10:60, 20:110] = 2
    late[-20:, :30] = 1
    return late


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "sequence"), [("ino-davis", "rollerblade"), ("ino-ytvos", "tennis"), ("dino-davis", "hockey")]
)
def test_step_by_step_equals_the_batch_path_on_real_frames(davis_dev: Path, preset: str, sequence: str) -> None:
    config = SIZES[preset]
    frames, first = load_sequence(davis_dev, sequence, 6, preset, ytvos_size=(208, 120))
    model = backbone()
    masks = {0: first}
    if preset == "ino-ytvos":
        masks[3] = late_object(first)  # the YouTube-VOS late-object chain
    features = FeatureExtractor(model, config, device="cpu", batch_size=3)(frames)
    expected = list(batch_path(features, masks, config, target_size(*first.shape, config), first.shape))
    propagator = VideoPropagator(model, config, device="cpu")
    streamed = [propagator.step(frame, masks.get(t)) for t, frame in enumerate(frames)]
    assert len(streamed) == len(expected) == 6
    for t, (a, b) in enumerate(zip(streamed, expected, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{preset} {sequence} frame {t}")
    assert all((m == 1).any() for m in streamed[1:])
    assert preset != "ino-ytvos" or all((m == 2).any() for m in streamed[3:])
    # the whole-video loop over the same propagator, features three frames per pass, gives the same masks
    again = VideoPropagator(model, config, device="cpu", batch_size=3).run(frames, masks)
    for a, b in zip(again, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_object_added_at_frame_k_follows_the_chain_logic_of_the_reference(davis_dev: Path) -> None:
    config = SIZES["ino-ytvos"]
    frames, first = load_sequence(davis_dev, "surf", 6, "ino-ytvos", ytvos_size=(208, 120))
    model = backbone(seed=5)
    late = late_object(first)
    propagator = VideoPropagator(model, config, device="cpu")
    streamed = [propagator.step(frame, {0: first, 2: late}.get(t)) for t, frame in enumerate(frames)]
    features = list(FeatureExtractor(model, config, device="cpu")(frames))
    target_hw = target_size(*first.shape, config)
    for t, soft in enumerate(reference_soft(features, {0: first, 2: late}, config)):
        if t == 0:
            continue
        ids, ties = reference_mask(soft, target_hw, first.shape)
        assert ties.mean() < 0.01, f"frame {t}"
        np.testing.assert_array_equal(np.where(ties, 0, streamed[t]), np.where(ties, 0, ids), err_msg=f"frame {t}")
    assert not (streamed[1] == 2).any() and all((m == 2).sum() > 100 for m in streamed[2:])


def endless(rng: np.random.Generator) -> Iterator[np.ndarray]:
    """A live source: a texture drifting one pixel per frame, forever."""
    texture = rng.integers(0, 256, (64, 4096, 3), dtype=np.uint8)
    for t in itertools.count():
        yield texture[:, t : t + 96]


def test_an_endless_source_streams_with_bounded_memory() -> None:
    first = np.zeros((64, 96), dtype=np.uint8)
    first[16:48, 24:56] = 1
    propagator = VideoPropagator(
        load_backbone("random", arch="vit_tiny", patch_size=8), "ino-davis", device="cpu", short_side=64, radius=4,
        n_last_frames=3,
    )  # fmt: skip
    held = []
    for t, ids in enumerate(itertools.islice(propagator.run(endless(np.random.default_rng(0)), {0: first}), 25)):
        assert ids.shape == (64, 96) and ids.dtype == np.uint8
        held.append(len(propagator.held_frames))
        if t == 0:
            np.testing.assert_array_equal(ids, first)
    assert max(held) == 4 and propagator.held_frames == [0, 22, 23, 24]  # first frame + the last 3
    assert propagator.frame_index == 25


def test_bad_input_to_the_stream_is_one_clear_error() -> None:
    model = load_backbone("random", arch="vit_tiny", patch_size=8)
    propagator = VideoPropagator(model, "ino-davis", device="cpu", short_side=64)
    frame = np.zeros((64, 96, 3), dtype=np.uint8)
    with pytest.raises(InoError, match="frame 0 needs a mask"):
        propagator.step(frame)
    with pytest.raises(InoError, match=r"mask of frame 0 is 32x64 \(WxH\) but the frames are 96x64"):
        propagator.step(frame, np.ones((64, 32), dtype=np.uint8))
    with pytest.raises(InoError, match="has no object"):
        propagator.step(frame, np.zeros((64, 96), dtype=np.uint8))
    propagator.step(frame, np.ones((64, 96), dtype=np.uint8))
    with pytest.raises(InoError, match="frame 1 is 80x64, frame 0 is 96x64"):
        propagator.step(np.zeros((64, 80, 3), dtype=np.uint8))
    with pytest.raises(InoError, match="without a backbone"):
        VideoPropagator(None, "ino-davis").step(frame, np.ones((64, 96), dtype=np.uint8))


def test_the_public_api_is_lazy_and_complete() -> None:
    import json
    import subprocess
    import sys

    code = "import json, sys, ino; assert 'torch' not in sys.modules; print(json.dumps(ino.__all__))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = set(json.loads(done.stdout))
    wanted = {"propagate_video", "VideoPropagator", "PropagationConfig", "load_backbone", "evaluate", "train"}
    assert wanted | {"TrainConfig", "__version__"} <= names
    assert ino.VideoPropagator is VideoPropagator and ino.propagate_video is propagate_video
    assert set(dir(ino)) >= wanted
    with pytest.raises(AttributeError):
        ino.no_such_name  # noqa: B018


# --- soft labels (JHMDB keypoints, VIP parts), issue 21's messages


@pytest.fixture(scope="module")
def tiny_vit() -> InoViT:
    """A random ViT-tiny/8 in float32, shared by the tests below (building one takes seconds on a busy CPU)."""
    return load_backbone("random", arch="vit_tiny", patch_size=8)


def test_soft_labels_stream_as_the_engine_propagates_them(davis_dev: Path) -> None:
    config = SIZES["ino-davis"]
    frames, first = load_sequence(davis_dev, "hockey", 4, "ino-davis")
    model = backbone()
    propagator = VideoPropagator(model, config, device="cpu")
    target_hw, grid_hw = propagator.geometry(*first.shape)
    features = list(FeatureExtractor(model, config, device="cpu")(frames))
    assert target_hw == target_size(*first.shape, config) and tuple(features[0].shape[1:]) == grid_hw
    labels = torch.randn(16, *grid_hw, generator=torch.Generator().manual_seed(0), dtype=torch.float64).softmax(0)
    engine = LabelPropagator(config)
    expected = [engine.step(f, labels=labels if t == 0 else None) for t, f in enumerate(features)]
    streamed = [propagator.step_soft(frame, labels if t == 0 else None) for t, frame in enumerate(frames)]
    whole = list(VideoPropagator(model, config, device="cpu", batch_size=3).run_soft(iter(frames), labels))
    assert len(streamed) == len(whole) == 4 and torch.equal(streamed[0], labels) and torch.equal(whole[0], labels)
    for t in range(4):
        assert torch.equal(streamed[t], expected[t]), f"frame {t}"
        torch.testing.assert_close(whole[t], expected[t], msg=f"frame {t}")  # features of three frames per pass
        torch.testing.assert_close(whole[t].sum(dim=0), torch.ones(grid_hw, dtype=torch.float64))
    # the backbone-free path: features in, soft labels on their grid out
    free = VideoPropagator(None, config)
    for t, f in enumerate(features):
        assert torch.equal(free.step_features_soft(f, labels if t == 0 else None), expected[t])


def test_soft_outputs_of_a_mask_started_video_and_a_fixed_number_of_classes(tiny_vit: InoViT) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(3)]
    first = np.zeros((64, 96), dtype=np.uint8)
    first[8:40, 16:60] = 3  # VIP: class 3 present, the other 19 part classes absent from frame 0
    masks = VideoPropagator(tiny_vit, "ino-davis", device="cpu", short_side=64)
    wide = VideoPropagator(tiny_vit, "ino-davis", device="cpu", short_side=64, n_classes=20)
    masks.step(frames[0], first)
    wide.step(frames[0], first)
    for frame in frames[1:]:
        soft = wide.step_soft(frame)
        assert soft.shape == (20, *wide.geometry(64, 96)[1]) and not soft[4:].any()
        np.testing.assert_array_equal(labels_to_mask(soft, (64, 96), (64, 96), wide.config), masks.step(frame))


def test_bad_soft_input_to_the_stream_is_one_clear_error(tiny_vit: InoViT) -> None:
    propagator = VideoPropagator(tiny_vit, "ino-davis", device="cpu", short_side=64)
    frame = np.zeros((64, 96, 3), dtype=np.uint8)
    assert propagator.geometry(64, 96) == ((64, 96), (8, 12))
    with pytest.raises(InoError, match=r"expected \(n_classes, 8, 12\), the grid of geometry\(\)"):
        list(propagator.run_soft([frame, frame], torch.rand(3, 8, 11)))
    with pytest.raises(InoError, match="frame 0 needs a mask or soft labels"):
        propagator.step_soft(frame)
    propagator.step_soft(frame, torch.rand(3, 8, 12))
    with pytest.raises(InoError, match="frame 1: soft labels start a video"):
        propagator.step_soft(frame, torch.rand(3, 8, 12))


def test_a_0_255_mask_reads_as_void_and_the_error_says_how_to_pass_ids(tiny_vit: InoViT) -> None:
    propagator = VideoPropagator(tiny_vit, "ino-davis", device="cpu", short_side=64)
    frame = np.zeros((64, 96, 3), dtype=np.uint8)
    binary = np.zeros((64, 96), dtype=np.uint8)
    binary[16:48, 24:56] = 255
    with pytest.raises(InoError, match=r"or void \(255, read as background.*\(mask > 0\)\.astype\(np\.uint8\)"):
        propagator.step(frame, binary)
    with pytest.raises(InoError, match=r"every pixel is background \(0\)$"):  # no void: no hint
        propagator.step(frame, np.zeros((64, 96), dtype=np.uint8))
    assert (propagator.step(frame, (binary > 0).astype(np.uint8)) == 1).sum() == 32 * 32


def test_a_mask_past_the_videos_end_is_ignored_with_a_warning(
    tiny_vit: InoViT, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(4)]
    first, late = np.zeros((64, 96), dtype=np.uint8), np.zeros((64, 96), dtype=np.uint8)
    first[8:40, 16:60], late[40:60, 60:90] = 1, 2
    logger = logging.getLogger("ino.propagation.api")
    logger.addHandler(caplog.handler)  # in-process CLI tests may have stopped "ino" propagating to the root
    try:
        masks = propagate_video(
            frames, first, backbone=tiny_vit, masks={2: late, 10: late, 12: late}, device="cpu", short_side=64
        )
    finally:
        logger.removeHandler(caplog.handler)
    assert len(masks) == 4 and all((m == 2).any() for m in masks[2:])
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}  # a set: maybe seen twice
    assert warnings == {"masks of frames [10, 12] ignored: the video has 4 frames (0..3)"}
