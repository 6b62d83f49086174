"""The references' propagation rule (CRW, CropMAE) as engine options, against the dense reference and by hand.

Each option alone and all together, with masks and with soft labels, on random float64 features: the tiled engine
must give the dense reference's soft labels (tests/support/reference_propagation.py writes the references' context
as CRW's code does, a block of keys per copy). The defaults are INO's rule, unchanged (test_engine.py).
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ino.errors import InoError
from ino.models.vit import build_vit
from ino.propagation.engine import LabelPropagator, first_frame_labels, labels_to_mask
from ino.propagation.features import FeatureExtractor, preprocess, tapped_block
from ino.propagation.presets import PRESETS, PropagationConfig
from support.reference_propagation import reference_soft

REFERENCE_RULE = {"window": "disk", "window_first_frame": False, "pad_context": True, "topk_ties": "exact"}
OPTIONS = {
    "disk": {"window": "disk"},
    "unwindowed-first": {"window_first_frame": False},
    "padded": {"pad_context": True},
    "exact-k": {"topk_ties": "exact"},
    "cv2-linear": {"label_downsampling": "cv2-linear"},
    "references": {**REFERENCE_RULE, "label_downsampling": "cv2-linear"},
}


def small_config(**changes: object) -> PropagationConfig:
    """Native size (one 8 px patch per cell), tiles of 10 queries, a radius that cuts the 7 x 9 grid."""
    base = dataclasses.replace(
        PRESETS["ino-davis"], short_side=None, norm_mask=False, topk=4, radius=3, n_last_frames=3, chunk_size=10
    )
    return dataclasses.replace(base, **changes)


def drifting(n_frames: int, h: int, w: int, seed: int, channels: int = 12) -> list[torch.Tensor]:
    """Float64 features of a drifting random scene: each frame is the last plus noise."""
    generator = torch.Generator().manual_seed(seed)
    frames = [torch.randn(channels, h, w, generator=generator, dtype=torch.float64)]
    for _ in range(n_frames - 1):
        frames.append(frames[-1] + 0.5 * torch.randn(channels, h, w, generator=generator, dtype=torch.float64))
    return frames


def blobs(h: int, w: int, patch: int = 8) -> np.ndarray:
    """Full-resolution ids whose edges do not follow the patches (ids 1, 2, 4)."""
    ids = np.zeros((h * patch, w * patch), dtype=np.uint8)
    ids[5:30, 3:40] = 1
    ids[20:45, 35:70] = 2
    ids[40:53, 2:13] = 4
    return ids


def run(config: PropagationConfig, features: list[torch.Tensor], masks: dict[int, np.ndarray]) -> list[torch.Tensor]:
    propagator = LabelPropagator(config)
    return [propagator.step(f, masks.get(t)) for t, f in enumerate(features)]


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_matches_the_dense_reference_with_masks(option: str) -> None:
    h, w = 7, 9
    features = drifting(9, h, w, seed=1)
    late = np.zeros((h * 8, w * 8), dtype=np.uint8)
    late[30:56, 44:72] = 5  # a second chain from frame 4, whose context is padded with copies of frame 4
    masks = {0: blobs(h, w), 4: late}
    config = small_config(**OPTIONS[option])
    expected = reference_soft(features, masks, config)
    outputs = run(config, features, masks)
    for t, (soft, reference) in enumerate(zip(outputs, expected, strict=True)):
        n = soft.shape[0]  # the engine's classes grow when id 5 appears; the reference has them all from frame 0
        torch.testing.assert_close(soft, reference[:n], rtol=0, atol=1e-12, msg=f"{option}, frame {t}")
        assert not reference[n:].any()
    default = run(small_config(), features, masks)
    change = max((a - b).abs().max() for a, b in zip(outputs, default, strict=True))
    assert change == 0 if option == "exact-k" else change > 1e-3  # exact k differs only on ties, which these lack


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_matches_the_dense_reference_with_soft_labels(option: str) -> None:
    h, w = 6, 8
    features = drifting(8, h, w, seed=2)
    labels = torch.randn(16, h, w, generator=torch.Generator().manual_seed(3), dtype=torch.float64).softmax(0)
    config = small_config(**OPTIONS[option])
    expected = reference_soft(features, {}, config, first_labels=labels)
    propagator = LabelPropagator(config)
    outputs = [propagator.step(f, labels=labels if t == 0 else None) for t, f in enumerate(features)]
    assert torch.equal(outputs[0], labels)
    for t, (soft, reference) in enumerate(zip(outputs, expected, strict=True)):
        torch.testing.assert_close(soft, reference, rtol=0, atol=1e-12, msg=f"{option}, frame {t}")
        torch.testing.assert_close(soft.sum(0), torch.ones(h, w, dtype=torch.float64))


@pytest.mark.parametrize("ties", ["keep", "exact"])
def test_exact_ties_with_padded_copies_match_the_reference(ties: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # features from 3 values: many keys tie exactly at the k-th largest, across frames and across copies
    h, w = 7, 9
    features = [f.sign() for f in drifting(7, h, w, seed=4, channels=3)]
    config = small_config(**{**REFERENCE_RULE, "topk_ties": ties}, topk=6)
    tied: list[int] = []
    exact = LabelPropagator._exact

    def counting(self, q, rows, *args):  # type: ignore[no-untyped-def]
        tied.append(int(rows.sum()))
        return exact(self, q, rows, *args)

    monkeypatch.setattr(LabelPropagator, "_exact", counting)
    expected = reference_soft(features, {0: blobs(h, w)}, config)
    outputs = run(config, features, {0: blobs(h, w)})
    assert sum(tied) > 50  # the lists were cut inside a tie: recomputed over every key
    for t, (soft, reference) in enumerate(zip(outputs, expected, strict=True)):
        torch.testing.assert_close(soft, reference, rtol=0, atol=1e-12, msg=f"frame {t}")


def test_copies_of_the_first_frame_fill_several_of_the_k_slots() -> None:
    """CRW's JHMDB setting at frame 1 (k = 10, N = 7): frame 0 is in the context 8 times (long memory + 7
    copies), so its best key takes 8 slots and its second best the other 2, weights 8 w1 and 2 w2."""
    s = torch.tensor([0.9, 0.6, 0.3, 0.1], dtype=torch.float64)  # cosines of frame 0's four cells to the query
    keys = torch.stack([s, (1 - s**2).sqrt()]).reshape(2, 1, 4)
    query = torch.tensor([1.0, 0.0], dtype=torch.float64).reshape(2, 1, 1).expand(2, 1, 4)
    labels = torch.eye(4, dtype=torch.float64).reshape(4, 1, 4)  # each cell its own class
    config = small_config(**REFERENCE_RULE, topk=10, n_last_frames=7, radius=12, temperature=0.1)
    propagator = LabelPropagator(config)
    propagator.step(keys, labels=labels)
    soft = propagator.step(query)[:, 0, 0]
    w1, w2 = 8 * math.exp(0.9 / 0.1), 2 * math.exp(0.6 / 0.1)
    torch.testing.assert_close(soft, torch.tensor([w1, w2, 0, 0], dtype=torch.float64) / (w1 + w2))
    # INO's context holds frame 0 once: the 4 keys it has, all kept
    ino = LabelPropagator(small_config(topk=10, n_last_frames=7, radius=12, temperature=0.1))
    ino.step(keys, labels=labels)
    expected = torch.exp(s / 0.1) / torch.exp(s / 0.1).sum()
    torch.testing.assert_close(ino.step(query)[:, 0, 0], expected)


def test_the_disk_holds_the_cells_strictly_inside_the_radius() -> None:
    # identical features: every key in the window ties and is kept, so each cell averages its window's labels
    h, w, radius = 7, 7, 2
    features = torch.ones(3, h, w, dtype=torch.float64)
    labels = torch.eye(h * w, dtype=torch.float64).reshape(h * w, h, w)
    propagator = LabelPropagator(small_config(window="disk", radius=radius, topk=1))
    propagator.step(features, labels=labels)
    centre = propagator.step(features)[:, 3, 3].reshape(h, w)
    inside = [(y, x) for y in range(h) for x in range(w) if (y - 3) ** 2 + (x - 3) ** 2 < radius**2]
    assert len(inside) == 9  # distance 2 (straight) is out, sqrt(2) (diagonal) in
    expected = torch.zeros(h, w, dtype=torch.float64)
    for cell in inside:
        expected[cell] = 1 / len(inside)
    torch.testing.assert_close(centre, expected)


def test_an_unwindowed_first_frame_reaches_across_the_grid() -> None:
    h, w = 5, 8
    codes = torch.eye(h * w, dtype=torch.float64).reshape(h * w, h, w)
    moved = codes.clone()
    moved[:, 0, 0] = codes[:, h - 1, w - 1]  # the far corner's content now at (0, 0)
    labels = torch.eye(h * w, dtype=torch.float64).reshape(h * w, h, w)
    far = LabelPropagator(small_config(window_first_frame=False, radius=1, topk=1))
    far.step(codes, labels=labels)
    assert far.step(moved)[(h - 1) * w + w - 1, 0, 0] == 1
    near = LabelPropagator(small_config(radius=1, topk=1))
    near.step(codes, labels=labels)
    assert near.step(moved)[(h - 1) * w + w - 1, 0, 0] == 0


def test_padding_counts_copies_and_a_mid_video_chain_pads_with_its_own_first_frame() -> None:
    propagator = LabelPropagator(small_config(pad_context=True, window_first_frame=False, n_last_frames=3))
    propagator._t = 1
    assert propagator._context(0) == {(0, False): 1, (0, True): 3}
    propagator._t = 2
    assert propagator._context(0) == {(0, False): 1, (0, True): 2, (1, True): 1}
    propagator._t = 6
    assert propagator._context(0) == {(0, False): 1, (3, True): 1, (4, True): 1, (5, True): 1}
    assert propagator._context(5) == {(5, False): 1, (5, True): 3}
    windowed = LabelPropagator(small_config(pad_context=True, n_last_frames=3))
    windowed._t = 2
    assert windowed._context(0) == {(0, True): 3, (1, True): 1}  # the first frame and its copies, one entry


def test_cv2_linear_labels_are_the_references_two_resizes() -> None:
    ids = np.zeros((60, 100), dtype=np.uint8)  # not the input size: nearest-resized to 64 x 96 first
    ids[7:41, 13:58] = 1
    ids[30:60, 50:91] = 3
    config = dataclasses.replace(PRESETS["cropmae-davis"], patch_size=8)
    labels = first_frame_labels(ids, (8, 12), config)
    resized = cv2.resize(ids, (96, 64), interpolation=cv2.INTER_NEAREST)
    for i in (0, 1, 3):
        expected = cv2.resize((resized == i).astype(np.float32), (12, 8), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(labels[i].numpy(), expected, atol=1e-6)
    assert labels[2].sum() == 0
    # each cell averages the 2 x 2 pixels around its centre: 16 px -> 2 cells reads pixels 3, 4 and 11, 12
    row = np.zeros((16, 16), dtype=np.uint8)
    row[:, 4] = 1
    row[:, 11:13] = 1
    torch.testing.assert_close(first_frame_labels(row, (2, 2), config)[1], torch.tensor([[0.5, 1.0], [0.5, 1.0]]))


def test_masks_go_back_to_the_frame_size_with_cv2_or_pil_nearest() -> None:
    soft = torch.rand(3, 4, 7, generator=torch.Generator().manual_seed(5))
    pil = labels_to_mask(soft, (32, 56), (45, 61), PRESETS["ino-davis"])
    config = dataclasses.replace(PRESETS["cropmae-davis"], patch_size=8)
    ids = labels_to_mask(soft, (32, 56), (45, 61), config)
    up = F.interpolate(soft[None], size=(32, 56), mode="bilinear", align_corners=False)[0].argmax(0)
    np.testing.assert_array_equal(ids, cv2.resize(up.numpy().astype(np.uint8), (61, 45), interpolation=0))
    assert (ids != pil).any()  # cv2 takes floor(x * in / out), PIL the nearest centre


def test_bad_rule_settings_are_one_clear_error() -> None:
    with pytest.raises(InoError, match="window must be one of"):
        small_config(window="circle")
    with pytest.raises(InoError, match="topk_ties must be one of"):
        small_config(topk_ties="all")
    with pytest.raises(InoError, match=r"a disk window .* radius must be >= 1"):
        small_config(window="disk", radius=0)
    with pytest.raises(InoError, match="label_downsampling must be one of"):
        small_config(label_downsampling="area")


def crw_formulation(
    features: list[torch.Tensor], labels: torch.Tensor, config: PropagationConfig
) -> list[torch.Tensor]:
    """CRW's test.py as docs/propagation.md describes it: the video's start repeated N times, each frame's keys =
    frame 0 (no radius mask) + the N padded frames before it (mask -1e10 outside the disk), logits / T, torch.topk
    over all of them, softmax of those k, labels summed; frame 0's prediction is its labels."""
    n, k = config.n_last_frames, config.topk
    c, h, w = features[0].shape
    feats = [F.normalize(f.reshape(c, h * w), dim=0) for f in features]
    padded = [0] * n + list(range(len(features)))  # index p holds frame max(0, p - n)
    rows, cols = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    distance = ((rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2).double().sqrt()
    penalty = torch.where(distance < config.radius, 0.0, -1e10).double()
    out = [labels.reshape(-1, h * w)]
    for t in range(1, len(features)):
        context = [0] + [padded[p] for p in range(t, t + n)]
        logits = torch.cat([feats[i].T @ feats[t] + (penalty if j else 0) for j, i in enumerate(context)])
        weights, ids = torch.topk(logits / config.temperature, k, dim=0)
        bank = torch.cat([out[i] for i in context], dim=1)
        out.append((bank[:, ids] * weights.softmax(dim=0)[None]).sum(dim=1))
    return [o.reshape(-1, h, w) for o in out]


@pytest.mark.parametrize(("topk", "n_last_frames"), [(10, 7), (7, 20), (10, 4)])
def test_the_references_rule_is_crw_s_formulation(topk: int, n_last_frames: int) -> None:
    # the three context shapes of the presets: copies of frame 0 fill several of the k slots for N frames
    h, w = 6, 8
    features = drifting(9, h, w, seed=6)
    labels = torch.randn(5, h, w, generator=torch.Generator().manual_seed(7), dtype=torch.float64).softmax(0)
    config = small_config(**REFERENCE_RULE, topk=topk, n_last_frames=n_last_frames, radius=3, temperature=0.07)
    expected = crw_formulation(features, labels, config)
    propagator = LabelPropagator(config)
    for t, f in enumerate(features):
        soft = propagator.step(f, labels=labels if t == 0 else None)
        torch.testing.assert_close(soft, expected[t], rtol=0, atol=1e-12, msg=f"frame {t}")


# --- the references' inputs: float resize, ImageNet std, the last block


def test_frames_are_resized_as_float_for_the_references() -> None:
    rgb = np.random.default_rng(8).integers(0, 256, size=(120, 203, 3), dtype=np.uint8)
    config = dataclasses.replace(PRESETS["cropmae-davis"], fixed_size=(96, 176))
    # CropMAE: cv2.imread -> float32 / 255 -> cv2.resize -> (x - mean) / std with std 0.229 (src/data/vos.py)
    image = cv2.resize(rgb.astype(np.float32) / 255.0, (176, 96))
    expected = (image - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    x = preprocess(rgb, config)
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expected, atol=2e-6)
    rounded = preprocess(rgb, dataclasses.replace(config, resize_dtype="uint8"))
    assert (rounded - x).abs().max() > 1e-3  # a uint8 resize rounds every pixel to an integer


def test_feature_block_minus_one_is_the_last_block_of_any_depth() -> None:
    torch.manual_seed(0)
    vit = build_vit("vit_tiny", 16).eval()
    frame = np.random.default_rng(9).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    config = dataclasses.replace(PRESETS["cropmae-davis"], fixed_size=None, short_side=48)
    last = FeatureExtractor(vit, config).batch([frame])
    eleven = FeatureExtractor(vit, dataclasses.replace(config, feature_block=11)).batch([frame])
    assert torch.equal(last, eleven) and tapped_block(vit, -12) == 0
    with pytest.raises(InoError, match=r"feature block -13 does not exist: the backbone has blocks 0..11"):
        FeatureExtractor(vit, dataclasses.replace(config, feature_block=-13))


def test_the_default_rule_is_inos_and_gives_what_it_gave_before_the_options() -> None:
    """Checksums of the engine's soft labels before these options existed (commit 881d874): random
    frames alternating with coarsely quantised ones (exact ties at the k-th), and an object added at frame 3; sums
    of about 2,000 held to 1e-9."""
    for name in ("ino-davis", "ino-ytvos", "dino-davis"):
        config = PRESETS[name]
        assert (config.window, config.window_first_frame, config.pad_context, config.topk_ties) == (
            "square",
            True,
            False,
            "keep",
        )
        assert (config.resize_dtype, config.mask_resize, config.long_side, config.fixed_size) == (
            "uint8",
            "pil",
            None,
            None,
        )
    h, w = 5, 7
    generator = torch.Generator().manual_seed(11)
    features = [torch.randn(6, h, w, generator=generator, dtype=torch.float64) for _ in range(6)]
    features = [f.round().clamp(-1, 1) if t % 2 else f for t, f in enumerate(features)]
    ids = np.kron((np.arange(h * w).reshape(h, w) % 3).astype(np.uint8), np.ones((8, 8), dtype=np.uint8))
    late = np.zeros_like(ids)
    late[8:32, 24:56] = 4
    config = dataclasses.replace(PRESETS["ino-davis"], short_side=None, radius=2, n_last_frames=2, chunk_size=9)
    outputs = run(config, features, {0: ids, 3: late})
    cell = torch.arange(1, h * w + 1, dtype=torch.float64).reshape(1, h, w)
    sums = [float((soft * torch.arange(1, soft.shape[0] + 1)[:, None, None] * cell).sum()) for soft in outputs]
    before = [1248.0, 1293.038612967908, 1346.375330314458, 1868.846061501943, 2253.885140629436, 2315.569524004783]
    np.testing.assert_allclose(sums, before, rtol=0, atol=1e-9)
