"""Label-propagation settings (docs/method.md §7.1, §9) and the frame and grid sizes they imply.

A :class:`PropagationConfig` is frozen so that a preset can be shared safely; every knob is overridden with
``dataclasses.replace(PRESETS["ino-davis"], radius=12)``. The presets reproduce published protocols
(:data:`PRESET_SOURCES` says where each comes from; docs/evaluation.md lists every value with its source):

- ``ino-davis``: INO on DAVIS (short side 480, long side floored to a multiple of 8, N_c = 10, R = 40).
- ``ino-ytvos``: INO on YouTube-VOS (native size floored to a multiple of 8; 1080x1920 and 816x1920 go to
  720x1280; N_c = 20, R = 50).
- ``dino-davis``: DINO's evaluation script (multiple of 64, nearest first-frame label, N_c = 7, R = 12,
  teacher weights, last block).
- ``crw-davis``, ``crw-jhmdb``, ``crw-vip``: CRW's label propagation (``ajabri/videowalk`` ``code/test.py``) with
  its DAVIS (README), JHMDB and VIP (issue #10) settings, applied to the ViT given: CRW's own backbone is a
  ResNet-18 at stride 8, whose layer has no ViT counterpart, so these tap the last block.
- ``cropmae-davis``, ``cropmae-jhmdb``, ``cropmae-vip``: CropMAE's port of it (``downstreams/propagation``) with
  the defaults of its ``util.py`` ("the ones used in the paper") for a ViT-S/16, last block + final norm.

The CRW and CropMAE presets switch on the references' propagation rule (:class:`PropagationConfig`: a disk window
that leaves the first frame out, a context padded with copies of the first frame, exactly k neighbours), their
first-frame label resize, fixed or long-side frame sizes, the ImageNet std 0.229 and no ``norm_mask``.

Any preset with fields replaced: ``resolve_config("ino-davis", radius=12)``. This module imports neither torch nor
OpenCV (the CLI reads the preset names from it); preprocessing lives in :mod:`ino.propagation.features`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ino.errors import InoError

SizeOverride = tuple[tuple[int, int], tuple[int, int]]
FEATURE_DTYPES = ("float32", "float16", "bfloat16")
LABEL_DOWNSAMPLING = ("bilinear", "nearest", "cv2-linear")
WINDOWS = ("square", "disk")
TOPK_TIES = ("keep", "exact")
RESIZE_DTYPES = ("uint8", "float32")
MASK_RESIZES = ("pil", "cv2")
#: the alternative frame-size rules of :func:`target_size`; at most one is set (none: native size)
SIZE_RULES = ("short_side", "long_side", "fixed_size")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_KEYS = ("student", "teacher")
#: settings that change speed or memory only, never the results (left out of a results folder's identity)
SPEED_ONLY = ("chunk_size",)


@dataclass(frozen=True)
class PropagationConfig:
    """Every setting of inference by label propagation; the defaults are INO's DAVIS protocol.

    Sizes (:func:`target_size`): ``short_side`` S, ``long_side`` L or ``fixed_size`` (h, w), at most one of them;
    none keeps the native size. The side a rule leaves free (or both, when native) is floored to a multiple of
    ``size_multiple``; ``fixed_size`` squashes every frame to exactly (h, w). ``size_overrides`` maps an exact
    original (H, W) to a target (H, W) and wins over the rule (YouTube-VOS sends 1080p to 720p). Whatever the
    rule gives is then floored to a multiple of ``patch_size`` on both sides, so any size fits any backbone.
    ``resize_dtype`` float32 resizes the frame as float (the references' ``cv2.resize`` of an image / 255)
    instead of as uint8 (INO, DINO).

    The propagation rule (docs/propagation.md, "The references' rule"): INO/DINO's is the default. The CRW
    and CropMAE references differ in four switches: ``window`` ``"disk"`` counts keys at Euclidean distance
    strictly below ``radius`` cells instead of a square of half side ``radius``; ``window_first_frame`` False leaves
    each chain's first frame out of the window; ``pad_context`` True makes the short context always hold
    ``n_last_frames`` entries, the missing ones at the start being copies of the chain's first frame, each
    counted in the joint top-k; ``topk_ties`` ``"exact"`` takes exactly ``topk`` neighbours (identical entries at
    the threshold share the remaining slots equally) where ``"keep"`` keeps every entry tied with the k-th.
    ``label_downsampling`` ``"cv2-linear"`` is their first-frame label resize and ``mask_resize`` ``"cv2"`` their
    last resize of output masks to the original size. ``feature_block`` counts from the last block when negative
    (-1: the last, whatever the depth).

    ``chunk_size`` (queries per affinity tile) and ``feature_dtype`` change speed and memory only; with float32
    they do not change results.
    """

    short_side: int | None = 480
    size_multiple: int = 8
    size_overrides: tuple[SizeOverride, ...] = ()
    patch_size: int = 8
    topk: int = 5
    n_last_frames: int = 10
    radius: int = 40
    temperature: float = 0.1
    label_downsampling: str = "bilinear"
    norm_mask: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = (0.228, 0.224, 0.225)
    checkpoint_key: str = "student"
    feature_block: int = 6
    chunk_size: int = 1024
    feature_dtype: str = "float32"
    long_side: int | None = None
    fixed_size: tuple[int, int] | None = None
    resize_dtype: str = "uint8"
    mask_resize: str = "pil"
    window: str = "square"
    window_first_frame: bool = True
    pad_context: bool = False
    topk_ties: str = "keep"

    def __post_init__(self) -> None:
        positive = {
            "size_multiple": self.size_multiple,
            "patch_size": self.patch_size,
            "topk": self.topk,
            "chunk_size": self.chunk_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise InoError(f"propagation setting {name} must be >= 1, got {value}")
        # a short side or override smaller than the backbone's patch is refused by target_size, which knows the
        # backbone's patch (these settings are built before the backbone is loaded, with the preset's patch 8)
        if self.short_side is not None and self.short_side < 1:
            raise InoError(
                f"short_side must be a positive number of pixels or None (native size), got {self.short_side}"
            )
        if self.long_side is not None and self.long_side < 1:
            raise InoError(f"long_side must be a positive number of pixels or None, got {self.long_side}")
        if self.fixed_size is not None and (len(self.fixed_size) != 2 or min(self.fixed_size) < 1):
            raise InoError(f"fixed_size must be a (height, width) of positive pixels or None, got {self.fixed_size}")
        rules = [name for name in SIZE_RULES if getattr(self, name) is not None]
        if len(rules) > 1:
            raise InoError(
                f"{' and '.join(rules)} are alternative frame-size rules: set all but one to None "
                "(a preset's rule is replaced by giving another one to resolve_config or the command line)"
            )
        for original, target in self.size_overrides:
            if any(side < 1 for side in target):
                raise InoError(f"size override {original} -> {target}: sides must be positive")
        if self.n_last_frames < 0 or self.radius < 0:
            raise InoError(f"n_last_frames and radius must be >= 0, got {self.n_last_frames}, {self.radius}")
        if self.temperature <= 0:
            raise InoError(f"temperature must be > 0, got {self.temperature}")
        choices = {
            "label_downsampling": LABEL_DOWNSAMPLING,
            "window": WINDOWS,
            "topk_ties": TOPK_TIES,
            "resize_dtype": RESIZE_DTYPES,
            "mask_resize": MASK_RESIZES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InoError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.window == "disk" and self.radius < 1:
            raise InoError("a disk window holds the keys at distance < radius: radius must be >= 1")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise InoError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {self.feature_dtype!r}")
        if self.checkpoint_key not in CHECKPOINT_KEYS:
            raise InoError(f"checkpoint_key must be one of {CHECKPOINT_KEYS}, got {self.checkpoint_key!r}")


# The references' rule, shared by CRW (ajabri/videowalk @ 047f3f4, under code/) and CropMAE's copy of it
# (alexandre-eymael/CropMAE @ 5d0dab2, under downstreams/propagation/src/): the radius mask is Euclidean, D < R
# (utils/__init__.py:356), added to the short-term frames only, A[0, :, len(long_mem):] (utils/test_utils.py:154);
# the context is frame 0 plus n_context frames padded with copies of frame 0 (test_utils.py:123-138); exactly k
# by torch.topk, softmax over them (test_utils.py:160-161); one-hot labels resized by cv2 INTER_LINEAR to the grid
# (data/vos.py:262); float frames resized by cv2 (data/vos.py:38-48); ImageNet mean/std (data/vos.py:173);
# L2-normalised features (test.py:85-86); norm_mask off (utils/arguments.py:56; CropMAE start.py:32); masks
# nearest-resized to the ground truth by cv2 (eval/convert_davis.py:69).
_REFERENCE_RULE = PropagationConfig(
    short_side=None,
    size_multiple=1,
    label_downsampling="cv2-linear",
    norm_mask=False,
    std=IMAGENET_STD,
    feature_block=-1,
    resize_dtype="float32",
    mask_resize="cv2",
    window="disk",
    window_first_frame=False,
    pad_context=True,
    topk_ties="exact",
)
# CRW: top-k 10, radius 12 (README, issue #10; utils/arguments.py:28,30); temperature 0.05, the README's and
# issue #10's (its argparse default 0.07, utils/arguments.py:26, is not what the README runs); stride 8
_CRW = dataclasses.replace(_REFERENCE_RULE, topk=10, radius=12, temperature=0.05)
# CropMAE: ViT-S/16 (util.py:24-25), last block + final norm (src/models_mae.py:107-110); T 0.7, R 20 and 20
# context frames for every task (util.py:28-47)
_CROPMAE = dataclasses.replace(_REFERENCE_RULE, patch_size=16, temperature=0.7, radius=20, n_last_frames=20)


PRESETS: dict[str, PropagationConfig] = {
    "ino-davis": PropagationConfig(),
    "ino-ytvos": PropagationConfig(
        short_side=None,
        size_overrides=(((1080, 1920), (720, 1280)), ((816, 1920), (720, 1280))),
        n_last_frames=20,
        radius=50,
    ),
    "dino-davis": PropagationConfig(
        size_multiple=64,
        label_downsampling="nearest",
        n_last_frames=7,
        radius=12,
        checkpoint_key="teacher",
        feature_block=11,
    ),
    # README "Label Propagation": --topk 10 --videoLen 20 --radius 12 --temperature 0.05 --cropSize -1
    # (native size; a ViT needs whole patches, so each side is floored to the patch multiple)
    "crw-davis": dataclasses.replace(_CRW, n_last_frames=20),
    # issue #10 (--topk 10 --videoLen 7 --radius 12 --temperature 0.05 --cropSize 320), squashed to 320x320
    # (data/jhmdb.py:205-220, ratio = 1.0)
    "crw-jhmdb": dataclasses.replace(_CRW, fixed_size=(320, 320), n_last_frames=7),
    # issue #10 (--topk 10 --videoLen 4 --radius 12 --temperature 0.05 --cropSize 560), squashed to 560x560
    # (data/vos.py:186-199, ratio = 1.0)
    "crw-vip": dataclasses.replace(_CRW, fixed_size=(560, 560), n_last_frames=4),
    # util.py:28-32 (T 0.7, k 7, R 20, video_len 20, crop [480, 880]); src/data/vos.py:147-152
    "cropmae-davis": dataclasses.replace(_CROPMAE, fixed_size=(480, 880), topk=7),
    # util.py:35-39 (T 0.7, k 7, R 20, video_len 20, crop [320, 320]); src/data/jhmdb.py:159-173
    "cropmae-jhmdb": dataclasses.replace(_CROPMAE, fixed_size=(320, 320), topk=7),
    # util.py:43-47 (T 0.7, k 10, R 20, video_len 20, crop [880]): long side 880, short side
    # int(short * 880 / long) floored to a multiple of 64 (src/data/vos.py:138-146)
    "cropmae-vip": dataclasses.replace(_CROPMAE, long_side=880, size_multiple=64, topk=10),
}

#: where each preset's values come from, in a line (docs/evaluation.md gives every value with its file and line)
PRESET_SOURCES = {
    "ino-davis": "INO (Pan et al., ACM MM 2022), the authors' DAVIS inference settings (docs/method.md §7.1)",
    "ino-ytvos": "INO (Pan et al., ACM MM 2022), the authors' YouTube-VOS inference settings (docs/method.md §9)",
    "dino-davis": "DINO (Caron et al., ICCV 2021), eval_video_segmentation.py defaults",
    "crw-davis": "CRW (Jabri et al., NeurIPS 2020), code/test.py with its README's DAVIS command, on the ViT given",
    "crw-jhmdb": "CRW (Jabri et al., NeurIPS 2020), code/test.py with the JHMDB settings of videowalk issue #10, "
    "on the ViT given",
    "crw-vip": "CRW (Jabri et al., NeurIPS 2020), code/test.py with the VIP settings of videowalk issue #10, "
    "on the ViT given",
    "cropmae-davis": "CropMAE (Eymaël et al., ECCV 2024), downstreams/propagation util.py DAVIS defaults",
    "cropmae-jhmdb": "CropMAE (Eymaël et al., ECCV 2024), downstreams/propagation util.py JHMDB defaults",
    "cropmae-vip": "CropMAE (Eymaël et al., ECCV 2024), downstreams/propagation util.py VIP defaults",
}


def get_preset(name: str) -> PropagationConfig:
    """The named preset, or an :class:`InoError` listing the valid names."""
    if name not in PRESETS:
        raise InoError(f"unknown propagation preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def resolve_config(preset: str | PropagationConfig = "ino-davis", **overrides: object) -> PropagationConfig:
    """A preset by name (or a config) with any fields replaced, e.g. ``resolve_config("ino-davis", topk=10)``.

    A size rule given (``short_side``, ``long_side`` or ``fixed_size``) replaces the preset's: the other two become
    None unless given too, so ``resolve_config("crw-jhmdb", short_side=240)`` is a short side of 240 and
    ``short_side=None`` the native size (``--scale-size 240`` and ``-1``).
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(PropagationConfig)})
    if unknown:
        raise InoError(f"unknown propagation setting(s): {', '.join(unknown)}")
    if any(name in overrides for name in SIZE_RULES):  # a size rule given replaces the preset's
        overrides = {**{name: None for name in SIZE_RULES}, **overrides}
    return dataclasses.replace(config, **overrides) if overrides else config


def for_patch_size(config: PropagationConfig, patch_size: int) -> PropagationConfig:
    """The protocol for a backbone with another patch size, one feature cell per patch; ``radius`` still counts
    cells, so it covers more pixels.

    When the preset's multiple and the patch divide one another, sizes become multiples of the larger (16 for a
    ViT/16 under ``ino-davis``, still 64 under ``dino-davis``). Otherwise (patch 14) the preset's multiple is
    kept and :func:`target_size` floors its result to the patch multiple: a common multiple (448 for 64 and 14)
    would change the aspect ratio by up to a fifth.
    """
    if patch_size == config.patch_size:
        return config
    multiple = math.lcm(config.size_multiple, patch_size)
    if multiple != max(config.size_multiple, patch_size):
        multiple = config.size_multiple
    return dataclasses.replace(config, patch_size=patch_size, size_multiple=multiple)


def target_size(height: int, width: int, config: PropagationConfig) -> tuple[int, int]:
    """The (height, width) a frame of the given original size is resized to before feature extraction.

    With a short side S: the shorter side becomes S and the longer one floor(S * long / short) rounded down to
    ``size_multiple`` (854x480 -> 848x480 at multiple 8, 832x480 at 64), a resize with a tiny aspect change,
    never a crop. Square frames take the landscape branch. With a long side L (CropMAE's VIP rule,
    ``src/data/vos.py:138-146``): the longer side becomes L and the shorter int(short * L / long) rounded down to
    ``size_multiple`` (1280x720 -> 880x448 at multiple 64); square frames take the portrait branch, as there.
    ``fixed_size`` squashes every frame to it (CRW's and CropMAE's 320x320, 560x560, 480x880). Then both sides are
    floored to a multiple of ``patch_size``, as the published protocols floor the long side: a short side of 122
    gives 120 with patch 8, 480 gives 476 with patch 14 (the backbone sees whole patches only).
    """
    if height < 1 or width < 1:
        raise InoError(f"frame size must be positive, got {height}x{width}")
    overrides = dict(config.size_overrides)
    m, long_side = config.size_multiple, config.long_side
    if (height, width) in overrides:
        size = overrides[(height, width)]
    elif config.fixed_size is not None:
        size = config.fixed_size
    elif long_side is not None and width > height:
        size = (int(height * long_side / width) // m * m, long_side)
    elif long_side is not None:
        size = (long_side, int(width * long_side / height) // m * m)
    elif config.short_side is None:
        size = (height // m * m, width // m * m)
    elif height > width:
        size = (int((config.short_side * height / width) // m * m), config.short_side)
    else:
        size = (config.short_side, int((config.short_side * width / height) // m * m))
    p = config.patch_size
    if min(size) < p:
        raise InoError(
            f"frame {height}x{width} is too small for patch size {p}: the settings resize it to {size[0]}x{size[1]}"
        )
    return size[0] // p * p, size[1] // p * p


def grid_size(target_hw: tuple[int, int], config: PropagationConfig) -> tuple[int, int]:
    """Feature-grid (h, w) of a resized frame: one cell per patch."""
    return target_hw[0] // config.patch_size, target_hw[1] // config.patch_size
