"""Label-propagation settings (docs/method.md §7.1, §9) and the frame and grid sizes they imply.

A :class:`PropagationConfig` is frozen so that a preset can be shared safely; every knob is overridden with
``dataclasses.replace(PRESETS["ino-davis"], radius=12)``. Three presets reproduce the published protocols:

- ``ino-davis``: INO on DAVIS (short side 480, long side floored to a multiple of 8, N_c = 10, R = 40).
- ``ino-ytvos``: INO on YouTube-VOS (native size floored to a multiple of 8; 1080x1920 and 816x1920 go to
  720x1280; N_c = 20, R = 50).
- ``dino-davis``: DINO's evaluation script (multiple of 64, nearest first-frame label, N_c = 7, R = 12,
  teacher weights, last block).

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
LABEL_DOWNSAMPLING = ("bilinear", "nearest")
CHECKPOINT_KEYS = ("student", "teacher")
#: settings that change speed or memory only, never the results (left out of a results folder's identity)
SPEED_ONLY = ("chunk_size",)


@dataclass(frozen=True)
class PropagationConfig:
    """Every setting of inference by label propagation; the defaults are INO's DAVIS protocol.

    Sizes: ``short_side`` None keeps the native size; the free side (or both, when native) is floored to a
    multiple of ``size_multiple``. ``size_overrides`` maps an exact original (H, W) to a target (H, W) and
    wins over the rule (YouTube-VOS sends 1080p to 720p). Whatever the rule gives is then floored to a multiple
    of ``patch_size`` on both sides, so any short side fits any backbone (:func:`target_size`). ``chunk_size``
    (queries per affinity tile) and ``feature_dtype`` change speed and memory only; with float32 they do not
    change results.
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
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.228, 0.224, 0.225)
    checkpoint_key: str = "student"
    feature_block: int = 6
    chunk_size: int = 1024
    feature_dtype: str = "float32"

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
        for original, target in self.size_overrides:
            if any(side < 1 for side in target):
                raise InoError(f"size override {original} -> {target}: sides must be positive")
        if self.n_last_frames < 0 or self.radius < 0:
            raise InoError(f"n_last_frames and radius must be >= 0, got {self.n_last_frames}, {self.radius}")
        if self.temperature <= 0:
            raise InoError(f"temperature must be > 0, got {self.temperature}")
        if self.label_downsampling not in LABEL_DOWNSAMPLING:
            raise InoError(f"label_downsampling must be one of {LABEL_DOWNSAMPLING}, got {self.label_downsampling!r}")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise InoError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {self.feature_dtype!r}")
        if self.checkpoint_key not in CHECKPOINT_KEYS:
            raise InoError(f"checkpoint_key must be one of {CHECKPOINT_KEYS}, got {self.checkpoint_key!r}")
        if self.feature_block < 0:
            raise InoError(f"feature_block must be >= 0, got {self.feature_block}")


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
}


def get_preset(name: str) -> PropagationConfig:
    """The named preset, or an :class:`InoError` listing the valid names."""
    if name not in PRESETS:
        raise InoError(f"unknown propagation preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def resolve_config(preset: str | PropagationConfig = "ino-davis", **overrides: object) -> PropagationConfig:
    """A preset by name (or a config) with any fields replaced, e.g. ``resolve_config("ino-davis", topk=10)``."""
    config = get_preset(preset) if isinstance(preset, str) else preset
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(PropagationConfig)})
    if unknown:
        raise InoError(f"unknown propagation setting(s): {', '.join(unknown)}")
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
    never a crop. Square frames take the landscape branch. Then both sides are floored to a multiple of
    ``patch_size``, as the published protocols floor the long side: a short side of 122 gives 120 with patch 8,
    480 gives 476 with patch 14 (the backbone sees whole patches only).
    """
    if height < 1 or width < 1:
        raise InoError(f"frame size must be positive, got {height}x{width}")
    overrides = dict(config.size_overrides)
    m = config.size_multiple
    if (height, width) in overrides:
        size = overrides[(height, width)]
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
