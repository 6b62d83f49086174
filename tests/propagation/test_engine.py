"""The propagation engine against the plain dense reference of docs/method.md §7, on real DAVIS frames and by hand.

Real-frame features here come from a small seeded convolution in float64, so that agreement is exact rather
than subject to float32 near-ties (tests/propagation/test_engine_vit.py does the same with ViT features).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ino.errors import InoError
from ino.propagation.api import VideoPropagator
from ino.propagation.engine import LabelPropagator, first_frame_labels, labels_to_mask
from ino.propagation.features import preprocess
from ino.propagation.presets import PRESETS, PropagationConfig, get_preset, grid_size, target_size
from support.batch_path import engine_masks
from support.reference_propagation import SMALL, load_sequence, reference_mask, reference_soft

# --- real DAVIS frames


def feature_extractor(channels: int = 24) -> torch.nn.Module:
    """A seeded patch embedding plus a 3x3 mixing layer: deterministic, local, and not trivially separable."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, channels, kernel_size=8, stride=8),
        torch.nn.GELU(),
        torch.nn.Conv2d(channels, channels, kernel_size=3, padding=1),
    )
    return net.double().eval()


@pytest.mark.parametrize(
    ("preset", "sequence"), [("ino-davis", "dog-agility"), ("ino-ytvos", "surf"), ("dino-davis", "motorbike")]
)
def test_engine_matches_dense_reference_on_real_frames(davis_dev: Path, preset: str, sequence: str) -> None:
    config = SMALL[preset]
    frames, first = load_sequence(davis_dev, sequence, 10, preset)
    original_hw = first.shape
    target_hw = target_size(*original_hw, config)
    net = feature_extractor()
    with torch.no_grad():
        features = [net(preprocess(rgb, config).double()[None])[0] for rgb in frames]
    assert features[0].shape[1:] == grid_size(target_hw, config)
    masks = {0: first}
    if preset == "ino-ytvos":
        # a late object (id 2) given at frame 4, whose mask also shows old id 1 elsewhere (to be ignored)
        late = np.zeros_like(first)
        late[13 : original_hw[0] // 2 + 3, 37 : original_hw[1] - 59] = 2
        late[-20:, :30] = 1
        masks[4] = late
    expected = [reference_mask(s, target_hw, original_hw) for s in reference_soft(features, masks, config)]
    engine = engine_masks(features, masks, dataclasses.replace(config, chunk_size=100))
    assert len(engine) == len(expected)
    np.testing.assert_array_equal(engine[0], first)
    for t in range(1, len(engine)):
        ids, ties = expected[t]
        assert ties.mean() < (0.01 if t >= 4 and preset == "ino-ytvos" else 1e-12), f"frame {t}"
        np.testing.assert_array_equal(
            np.where(ties, 0, engine[t]), np.where(ties, 0, ids), err_msg=f"{preset} {sequence} frame {t}"
        )
    assert any((m == 1).any() for m in engine[1:])
    assert preset != "ino-ytvos" or all((m == 2).sum() > 1000 for m in engine[4:])


def test_exact_ties_on_real_frames_match_the_reference(davis_dev: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # coarsely quantised features repeat exactly, so many queries tie at the k-th largest affinity
    config = SMALL["ino-davis"]
    frames, first = load_sequence(davis_dev, "hockey", 6, "ino-davis")
    target_hw = target_size(*first.shape, config)
    net = feature_extractor()
    with torch.no_grad():
        features = [net(preprocess(rgb, config).double()[None])[0].round().clamp(-1, 1) for rgb in frames]
    tied: list[int] = []
    exact = LabelPropagator._exact

    def counting(self, q, rows, *args):  # type: ignore[no-untyped-def]
        tied.append(int(rows.sum()))
        return exact(self, q, rows, *args)

    monkeypatch.setattr(LabelPropagator, "_exact", counting)
    expected = [reference_mask(s, target_hw, first.shape) for s in reference_soft(features, {0: first}, config)]
    engine = engine_masks(features, {0: first}, config)
    assert sum(tied) > 1000
    for t in range(1, len(engine)):
        ids, ties = expected[t]
        assert not ties.any()
        np.testing.assert_array_equal(engine[t], ids, err_msg=f"frame {t}")


def test_float32_engine_agrees_with_reference(davis_dev: Path) -> None:
    config = SMALL["ino-davis"]
    frames, first = load_sequence(davis_dev, "tennis", 6, "ino-davis")
    target_hw = target_size(*first.shape, config)
    net = feature_extractor().float()
    with torch.no_grad():
        features = [net(preprocess(rgb, config)[None])[0] for rgb in frames]
    reference = reference_soft(features, {0: first}, config)
    propagator = LabelPropagator(config)
    for t, frame_features in enumerate(features):
        soft = propagator.step(frame_features, first if t == 0 else None)
        torch.testing.assert_close(soft, reference[t], rtol=1e-4, atol=1e-5)
        expected, _ = reference_mask(reference[t], target_hw, first.shape)
        agree = labels_to_mask(soft, target_hw, first.shape, config) == expected
        assert agree.mean() > 0.999


# --- hand-made features


def tiny_config(**changes: object) -> PropagationConfig:
    """Hand-made grids at native size (one 8 px patch per cell), nearest labels, no norm_mask."""
    base = dataclasses.replace(PRESETS["ino-davis"], short_side=None, label_downsampling="nearest", norm_mask=False)
    return dataclasses.replace(base, **changes)


def unique_codes(h: int, w: int) -> torch.Tensor:
    """A static scene: every cell its own orthonormal feature, so each query matches its own cell only."""
    return torch.eye(h * w, dtype=torch.float64).reshape(h * w, h, w)


def block_ids(cells: np.ndarray, patch: int = 8) -> np.ndarray:
    """Full-resolution ids that are constant over each patch."""
    return np.kron(cells, np.ones((patch, patch), dtype=np.uint8)).astype(np.uint8)


def test_many_objects_on_a_static_scene_are_reproduced_exactly() -> None:
    h, w = 4, 6
    cells = np.arange(h * w, dtype=np.uint8).reshape(h, w) % 13  # 12 objects plus background
    ids = block_ids(cells)
    config = tiny_config(topk=1, radius=1, n_last_frames=3, norm_mask=True)
    outputs = engine_masks([unique_codes(h, w)] * 6, {0: ids}, config)
    for mask in outputs:
        np.testing.assert_array_equal(mask, ids)


def test_late_object_starts_its_own_chain_with_injection() -> None:
    h, w = 2, 4
    first = block_ids(np.array([[1, 1, 0, 0], [2, 2, 0, 0]], dtype=np.uint8))
    later = block_ids(np.array([[0, 0, 0, 3], [1, 0, 0, 3]], dtype=np.uint8))  # old id 1 elsewhere: ignored
    config = tiny_config(topk=1, radius=3, n_last_frames=2)
    propagator = LabelPropagator(config)
    codes = unique_codes(h, w)
    soft = [propagator.step(codes, first)]
    soft += [propagator.step(codes) for _ in range(2)]
    assert soft[1].shape == (3, h, w)
    torch.testing.assert_close(soft[2], soft[0])  # a static scene propagates unchanged
    soft.append(propagator.step(codes, later))  # frame 3: injection, n_classes grows to 4
    assert soft[3].shape == (4, h, w)
    torch.testing.assert_close(
        soft[3][:, :, 3], torch.tensor([[0.0, 0.0], [0, 0], [0, 0], [1, 1]], dtype=torch.float64)
    )
    torch.testing.assert_close(soft[3][:3, :, :3], soft[0][:, :, :3])  # old id 1 in the new mask is ignored
    soft.append(propagator.step(codes))
    # frame 4, column 3: chain 0 sees frames [0, 2, 3] -> background (1 + 1 + 0) / 3; chain 1 sees [3] -> id 3
    torch.testing.assert_close(
        soft[4][:, :, 3], torch.tensor([[2 / 3] * 2, [0, 0], [0, 0], [1, 1]], dtype=torch.float64)
    )
    soft.append(propagator.step(codes))
    # frame 5: chain 0 sees [0, 3, 4] -> (1 + 0 + 2/3) / 3; chain 1 sees [3, 4] -> (1 + 1) / 2
    torch.testing.assert_close(
        soft[5][:, :, 3], torch.tensor([[5 / 9] * 2, [0, 0], [0, 0], [1, 1]], dtype=torch.float64)
    )
    torch.testing.assert_close(soft[5][:, :, :3], F.pad(soft[0], (0, 0, 0, 0, 0, 1))[:, :, :3])


def test_window_and_topk_follow_the_spec_on_hand_made_logits() -> None:
    # one row of 6 cells: key j has cosine s_j with every query, increasing to the right
    s = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], dtype=torch.float64)
    keys = torch.stack([s, (1 - s**2).sqrt()]).reshape(2, 1, 6)
    queries = torch.tensor([1.0, 0.0], dtype=torch.float64).reshape(2, 1, 1).expand(2, 1, 6)
    ids = block_ids(np.arange(6, dtype=np.uint8)[None])
    propagator = LabelPropagator(tiny_config(topk=2, radius=1, temperature=0.1))
    propagator.step(keys, ids)
    soft = propagator.step(queries)[:, 0]
    e = math.exp
    for q in range(6):
        window = [j for j in range(6) if abs(j - q) <= 1]
        best = sorted(window)[-2:]  # the two largest cosines inside the window
        expected = torch.zeros(6, dtype=torch.float64)
        for j in best:
            expected[j] = e(s[j] / 0.1) / sum(e(s[i] / 0.1) for i in best)
        torch.testing.assert_close(soft[:, q], expected, msg=f"query {q}")


def test_ties_at_the_threshold_are_all_kept() -> None:
    # identical features everywhere: every key in the window ties, so each cell averages its window
    h, w, radius = 5, 7, 1
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 4, size=(h, w)).astype(np.uint8)
    cells[0, 0] = 3
    features = torch.ones(3, h, w, dtype=torch.float64)
    propagator = LabelPropagator(tiny_config(topk=2, radius=radius, chunk_size=4))
    propagator.step(features, block_ids(cells))
    soft = propagator.step(features)
    one_hot = np.eye(4)[cells]
    padded = np.pad(one_hot, ((radius, radius), (radius, radius), (0, 0)))
    counts = np.pad(np.ones((h, w)), radius)
    for r in range(h):
        for c in range(w):
            box = padded[r : r + 2 * radius + 1, c : c + 2 * radius + 1].sum(axis=(0, 1))
            n = counts[r : r + 2 * radius + 1, c : c + 2 * radius + 1].sum()
            np.testing.assert_allclose(soft[:, r, c].numpy(), box / n, err_msg=f"cell {r},{c}")


# --- memory and chunks


def test_results_do_not_depend_on_chunk_size_and_no_dense_tensor_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h, w, radius = 8, 13, 2
    generator = torch.Generator().manual_seed(1)
    features = [torch.randn(16, h, w, generator=generator, dtype=torch.float64) for _ in range(5)]
    cells = (torch.rand(h, w, generator=generator) * 9).long().numpy().astype(np.uint8)
    ids = block_ids(cells)
    shapes: list[tuple[int, ...]] = []
    original = LabelPropagator._logits

    def recording(self, *args):  # type: ignore[no-untyped-def]
        logits = original(self, *args)
        shapes.append(tuple(logits.shape))
        return logits

    monkeypatch.setattr(LabelPropagator, "_logits", recording)
    results = []
    for chunk in (1, 7, 40, h * w):
        shapes.clear()
        config = tiny_config(radius=radius, chunk_size=chunk, n_last_frames=3)
        results.append(engine_masks(features, {0: ids}, config))
        # a logits block holds at most chunk queries, each against the key rectangle of its tile only
        assert max(rows for rows, _ in shapes) <= chunk
        if chunk < h * w:
            assert max(cols for _, cols in shapes) < h * w
            assert max(rows * cols for rows, cols in shapes) <= (h * w) ** 2 / 4
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_context_is_pruned_to_what_later_frames_need() -> None:
    propagator = LabelPropagator(tiny_config(n_last_frames=2))
    codes = unique_codes(2, 2)
    propagator.step(codes, block_ids(np.array([[0, 1], [1, 0]], dtype=np.uint8)))
    for _ in range(5):
        propagator.step(codes)
    assert propagator.held_frames == [0, 4, 5]
    assert propagator.frame_index == 6


# --- presets, sizes, validation


def test_presets_and_target_sizes() -> None:
    assert target_size(480, 854, PRESETS["ino-davis"]) == (480, 848)
    assert grid_size((480, 848), PRESETS["ino-davis"]) == (60, 106)
    assert target_size(480, 910, PRESETS["ino-davis"]) == (480, 904)
    assert target_size(854, 480, PRESETS["ino-davis"]) == (848, 480)
    assert target_size(480, 854, PRESETS["dino-davis"]) == (480, 832)
    assert target_size(720, 1280, PRESETS["ino-ytvos"]) == (720, 1280)
    assert target_size(1080, 1920, PRESETS["ino-ytvos"]) == (720, 1280)
    assert target_size(816, 1920, PRESETS["ino-ytvos"]) == (720, 1280)
    assert target_size(495, 1001, PRESETS["ino-ytvos"]) == (488, 1000)
    davis, ytvos, dino = PRESETS["ino-davis"], PRESETS["ino-ytvos"], PRESETS["dino-davis"]
    assert (davis.topk, davis.n_last_frames, davis.radius, davis.temperature) == (5, 10, 40, 0.1)
    assert (davis.checkpoint_key, davis.feature_block, davis.label_downsampling) == ("student", 6, "bilinear")
    assert davis.std == (0.228, 0.224, 0.225) and davis.norm_mask
    assert (ytvos.n_last_frames, ytvos.radius) == (20, 50)
    assert (dino.n_last_frames, dino.radius, dino.checkpoint_key, dino.feature_block) == (
        7,
        12,
        "teacher",
        11,
    )
    assert dino.label_downsampling == "nearest"
    assert dataclasses.replace(davis, radius=12).radius == 12 and davis.radius == 40
    assert get_preset("ino-ytvos") is ytvos


def test_preprocess_resizes_then_normalises() -> None:
    rgb = np.full((480, 854, 3), 255, dtype=np.uint8)
    x = preprocess(rgb, PRESETS["ino-davis"])
    assert x.shape == (3, 480, 848) and x.dtype == torch.float32
    torch.testing.assert_close(
        x[:, 0, 0], torch.tensor([(1 - 0.485) / 0.228, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    )


def test_first_frame_labels_bilinear_point_samples_and_nearest_uses_pil() -> None:
    ids = np.zeros((16, 16), dtype=np.uint8)
    ids[:, 8:] = 1
    bilinear = first_frame_labels(ids, (2, 2), PRESETS["ino-davis"])
    # align_corners=True samples the grid corners (0, 0), (0, 15), ... of the full-resolution one-hot
    torch.testing.assert_close(bilinear[1], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    nearest = first_frame_labels(ids, (2, 2), PRESETS["dino-davis"], n_classes=3)
    assert nearest.shape == (3, 2, 2) and nearest[2].sum() == 0
    torch.testing.assert_close(nearest[1], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    void = np.full((16, 16), 255, dtype=np.uint8)
    assert first_frame_labels(void, (2, 2), PRESETS["ino-davis"]).shape == (1, 2, 2)


def test_bad_input_raises_ino_error() -> None:
    with pytest.raises(InoError, match="unknown propagation preset"):
        get_preset("davis")
    with pytest.raises(InoError, match="radius"):
        PropagationConfig(radius=-1)
    with pytest.raises(InoError, match="feature_dtype"):
        PropagationConfig(feature_dtype="int8")
    with pytest.raises(InoError, match="frame 0 needs a mask"):
        LabelPropagator(PRESETS["ino-davis"]).step(torch.zeros(4, 2, 2))
    with pytest.raises(InoError, match="uint8"):
        preprocess(np.zeros((8, 8, 3), dtype=np.float32), PRESETS["ino-davis"])
    propagator = LabelPropagator(PRESETS["ino-davis"])
    propagator.step(torch.ones(4, 2, 2), np.zeros((16, 16), dtype=np.uint8))
    with pytest.raises(InoError, match="feature grid"):
        propagator.step(torch.ones(4, 3, 2))


def test_half_precision_features_give_the_same_masks_on_separated_features() -> None:
    h, w = 6, 8
    codes = unique_codes(h, w).float()
    ids = block_ids((np.arange(h * w) % 5).reshape(h, w).astype(np.uint8))
    config = tiny_config(topk=1, radius=2, feature_dtype="bfloat16")
    for mask in engine_masks([codes] * 4, {0: ids}, config):
        np.testing.assert_array_equal(mask, ids)


def test_half_precision_features_are_multiplied_in_float32() -> None:
    """Stored in bf16, but their affinities are float32 products: a bf16 product keeps 8 mantissa bits, which ties
    two keys that float32 tells apart (on davis-dev this reordering cost 0.06 J&F, docs/propagation.md)."""
    key_a, key_b, query = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 0.05, 0.0]), torch.tensor([1.0, 0.02, 0.03])
    stored = [F.normalize(v, dim=0).bfloat16() for v in (key_a, key_b, query)]
    assert stored[2] @ stored[0] == stored[2] @ stored[1]  # bf16 products tie
    assert stored[2].float() @ stored[1].float() > stored[2].float() @ stored[0].float()  # float32 ones do not
    frame0 = torch.stack([key_a, key_b], dim=1)[:, None]  # (C, 1, 2): object 1 left, object 2 right
    frame1 = torch.stack([query, query], dim=1)[:, None]
    ids = block_ids(np.array([[1, 2]], dtype=np.uint8))
    propagator = LabelPropagator(tiny_config(topk=1, radius=2, feature_dtype="bfloat16"))
    propagator.step(frame0, ids)
    soft = propagator.step(frame1)
    torch.testing.assert_close(soft[:, 0], torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]))


def random_video(n_frames: int, h: int, w: int, channels: int = 16, seed: int = 0) -> list[torch.Tensor]:
    """Float32 features of a drifting random scene: each frame is the last plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    frames = [torch.randn(channels, h, w, generator=generator)]
    for _ in range(n_frames - 1):
        frames.append(frames[-1] + 0.3 * torch.randn(channels, h, w, generator=generator))
    return frames


def test_a_low_temperature_gives_the_float64_reference_not_an_overflow() -> None:
    # issue 21 case 4: exp(logit / 0.003) overflows float32 (the old engine gave NaN, then all-background masks)
    h, w = 6, 8
    features = random_video(5, h, w)
    ids = block_ids((np.arange(h * w).reshape(h, w) // 12).astype(np.uint8))  # 4 horizontal bands, ids 0..3
    config = tiny_config(topk=5, radius=2, n_last_frames=3, temperature=0.003)
    reference = reference_soft([f.double() for f in features], {0: ids}, config)
    propagator = LabelPropagator(config)
    for t, frame in enumerate(features):
        soft = propagator.step(frame, ids if t == 0 else None)
        assert torch.isfinite(soft).all(), f"frame {t}"
        torch.testing.assert_close(soft.double(), reference[t], rtol=0, atol=1e-4, msg=f"frame {t}")
    assert reference[-1].amax(dim=0).min() > 0.5  # a sharp, non-trivial prediction was compared


def test_the_temperature_tends_to_the_top_1_key() -> None:
    h, w, radius = 5, 7, 2
    keys, queries = random_video(2, h, w, seed=1)
    cells = (np.arange(h * w).reshape(h, w) % 5).astype(np.uint8)
    propagator = LabelPropagator(tiny_config(topk=3, radius=radius, temperature=1e-6))
    propagator.step(keys, block_ids(cells))
    soft = propagator.step(queries)
    k, q = F.normalize(keys.double(), dim=0), F.normalize(queries.double(), dim=0)
    for y in range(h):
        for x in range(w):
            window = [
                (j, i) for j in range(max(y - radius, 0), min(y + radius + 1, h))
                for i in range(max(x - radius, 0), min(x + radius + 1, w))
            ]  # fmt: skip
            best = max(window, key=lambda cell: float(q[:, y, x] @ k[:, cell[0], cell[1]]))
            expected = F.one_hot(torch.tensor(int(cells[best])), 5).float()
            torch.testing.assert_close(soft[:, y, x], expected, msg=f"cell {(y, x)}")


# --- soft labels in, soft labels out (JHMDB keypoints, VIP parts)


def heat_maps(n_joints: int, h: int, w: int, sigma: float = 1.0, seed: int = 0) -> torch.Tensor:
    """JHMDB-style labels: one Gaussian per joint at a random cell, plus a background channel, unnormalised."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    centres = torch.rand(n_joints, 2, generator=generator) * torch.tensor([h - 1, w - 1])
    maps = torch.exp(-((ys - centres[:, :1, None]) ** 2 + (xs - centres[:, 1:, None]) ** 2) / (2 * sigma**2))
    return torch.cat([1 - maps.amax(dim=0, keepdim=True), maps]).double()


@pytest.mark.parametrize("kind", ["probabilities", "heat maps"])
def test_soft_labels_propagate_as_the_dense_reference(kind: str) -> None:
    h, w = 6, 9
    features = [f.double() for f in random_video(6, h, w, seed=2)]
    if kind == "probabilities":  # VIP-style: 20 part classes, summing to 1 in every cell
        labels = torch.randn(20, h, w, generator=torch.Generator().manual_seed(3), dtype=torch.float64).softmax(0)
    else:
        labels = heat_maps(15, h, w)
    config = tiny_config(topk=4, radius=2, n_last_frames=3)
    reference = reference_soft(features, {}, config, first_labels=labels)
    propagator = LabelPropagator(config)
    outputs = [propagator.step(f, labels=labels if t == 0 else None) for t, f in enumerate(features)]
    assert torch.equal(outputs[0], labels)  # frame 0's labels are stored and returned unchanged
    for t, (soft, expected) in enumerate(zip(outputs, reference, strict=True)):
        assert soft.shape == labels.shape
        torch.testing.assert_close(soft, expected, msg=f"frame {t}")
        if kind == "probabilities":
            torch.testing.assert_close(soft.sum(dim=0), torch.ones(h, w, dtype=torch.float64), msg=f"frame {t}")
    assert not torch.allclose(outputs[-1], labels)  # the labels moved with the features


@pytest.mark.parametrize("downsampling", ["nearest", "bilinear"])
def test_one_hot_soft_labels_give_the_masks_of_the_ids_path(downsampling: str) -> None:
    h, w = 6, 9
    features = [f.double() for f in random_video(5, h, w, seed=4)]
    ids = np.zeros((h * 8, w * 8), dtype=np.uint8)  # blobs not aligned with the patches
    ids[5:30, 3:40] = 1
    ids[20:45, 35:70] = 2
    ids[40:47, 2:9] = 4  # id 3 absent
    config = tiny_config(topk=3, radius=2, n_last_frames=2, label_downsampling=downsampling, norm_mask=True)
    by_ids = VideoPropagator(None, config)
    masks = [by_ids.step_features(f, ids if t == 0 else None) for t, f in enumerate(features)]
    by_labels = VideoPropagator(None, config)
    labels = first_frame_labels(ids, (h, w), config)
    softs = [by_labels.step_features_soft(f, labels if t == 0 else None) for t, f in enumerate(features)]
    reference = LabelPropagator(config)
    for t, (f, soft) in enumerate(zip(features, softs, strict=True)):
        expected = reference.step(f, ids if t == 0 else None)
        if downsampling == "nearest":  # exact one-hot labels: bit for bit the ids path
            assert torch.equal(soft, expected), f"frame {t}"
        else:  # the ids path scales the labels by their coverage, which is 1 up to rounding
            torch.testing.assert_close(soft, expected, msg=f"frame {t}")
        if t:
            np.testing.assert_array_equal(labels_to_mask(soft, (h * 8, w * 8), ids.shape, config), masks[t])
    assert all((m == 2).any() for m in masks)


def test_the_number_of_classes_can_be_fixed_for_the_ids_path() -> None:
    h, w = 4, 6
    features = random_video(3, h, w, seed=5)
    ids = block_ids((np.arange(h * w).reshape(h, w) % 3 * 3).astype(np.uint8))  # ids 0, 3, 6
    fixed, grown = LabelPropagator(tiny_config(), n_classes=20), LabelPropagator(tiny_config())
    for t, f in enumerate(features):
        wide, narrow = fixed.step(f, ids if t == 0 else None), grown.step(f, ids if t == 0 else None)
        assert wide.shape == (20, h, w) and narrow.shape == (7, h, w)
        torch.testing.assert_close(wide[:7], narrow)
        assert not wide[7:].any()
    with pytest.raises(InoError, match="object id 6 does not fit in the 5 classes"):
        LabelPropagator(tiny_config(), n_classes=5).step(features[0], ids)


def test_bad_soft_labels_are_one_clear_error() -> None:
    features = torch.randn(8, 4, 6)
    ids = np.ones((32, 48), dtype=np.uint8)
    with pytest.raises(InoError, match=r"float tensor \(n_classes, 4, 6\) on the feature grid, got shape \(3, 4, 5\)"):
        LabelPropagator(tiny_config()).step(features, labels=torch.rand(3, 4, 5))
    with pytest.raises(InoError, match=r"got shape .* dtype torch.int64"):
        LabelPropagator(tiny_config()).step(features, labels=torch.ones(3, 4, 6, dtype=torch.long))
    with pytest.raises(InoError, match="NaN"):
        LabelPropagator(tiny_config()).step(features, labels=torch.full((3, 4, 6), float("nan")))
    with pytest.raises(InoError, match="soft labels have 3 channels, this propagator 20"):
        LabelPropagator(tiny_config(), n_classes=20).step(features, labels=torch.rand(3, 4, 6))
    with pytest.raises(InoError, match="frame 0 and instead of a mask"):
        LabelPropagator(tiny_config()).step(features, ids, labels=torch.rand(3, 4, 6))
    propagator = LabelPropagator(tiny_config())
    propagator.step(features, labels=torch.rand(3, 4, 6))
    with pytest.raises(InoError, match="frame 1: soft labels start a video"):
        propagator.step(features, labels=torch.rand(3, 4, 6))
    with pytest.raises(InoError, match="needs a mask or soft labels"):
        LabelPropagator(tiny_config()).step(features)
