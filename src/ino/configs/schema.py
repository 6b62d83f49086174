"""The training configuration: one dataclass per group, with every setting's type, choices and range.

The defaults are the authors' Charades run with their bugs fixed (docs/method.md §6.1, §10); the YAML presets next
to this module (``ino-charades``, ``ino-kinetics``, ``tiny``, ``demo``, ``ablations/*``) change some of them. Where
the authors' code and the paper's text differ, the code ("faithful") is the default and the text is an option:
``augment.global_aug: paper``, ``masking.mode: block``, ``loss.out_mode: paper``.

Validation lives here and only here: a group checks its own settings (types, choices, ranges, how settings relate)
when it is built and again in :meth:`TrainConfig.validate`, so YAML files, command-line overrides, checkpoints and
code that edits a configuration all meet the same rules and the same messages, which name the dotted setting.
This module imports neither torch nor any decoder: the CLI reads it to build its options.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ino.errors import InoError

#: width, depth and heads of the supported ViT backbones (all with MLP ratio 4, as in DINO)
VIT_ARCHS: dict[str, tuple[int, int, int]] = {
    "vit_tiny": (192, 12, 3),
    "vit_small": (384, 12, 6),
    "vit_base": (768, 12, 12),
}
PATCH_SIZES = (8, 16)
SAMPLINGS = ("fps", "stride")
VIDEO_BACKENDS = ("auto", "pyav", "opencv")
GLOBAL_AUGS = ("none", "paper")
MASK_MODES = ("random_shared", "block")
OUT_MODES = ("faithful", "paper")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SCHEDULES = ("clean", "authors")


@dataclass(frozen=True)
class Rule:
    """What a setting's value must satisfy: ``test(value)``, described as ``text`` in messages."""

    text: str
    test: Callable[[Any], bool]


def at_least(low: float) -> Rule:
    return Rule(f">= {low}", lambda v: v >= low)


def above(low: float) -> Rule:
    return Rule(f"> {low}", lambda v: v > low)


def within(low: float, high: float) -> Rule:
    return Rule(f"in [{low}, {high}]", lambda v: low <= v <= high)


def pair_within(low: float, high: float) -> Rule:
    """A (lo, hi) pair with ``low < lo <= hi <= high``."""
    return Rule(f"a pair with {low} < lo <= hi <= {high}", lambda v: low < v[0] <= v[1] <= high)


EVEN = Rule("even and >= 2", lambda v: v >= 2 and v % 2 == 0)
JITTER = Rule(
    "(brightness, contrast, saturation >= 0, 0 <= hue <= 0.5)", lambda v: min(v[:3]) >= 0 and 0 <= v[3] <= 0.5
)
POSITIVE_ALL = Rule("all > 0", lambda v: min(v) > 0)
FRACTION = Rule("in [0, 1)", lambda v: 0 <= v < 1)
OPEN_PAIR = Rule("a pair with 0 < lo <= hi < 1", lambda v: 0 < v[0] <= v[1] < 1)


def setting(default: Any, *, choices: tuple[Any, ...] | None = None, rule: Rule | None = None) -> Any:
    """A dataclass field with the allowed ``choices`` or a ``rule`` its value must satisfy."""
    return field(default=default, metadata={"choices": choices, "rule": rule})


def _coerce(value: Any, kind: Any, name: str, what: str) -> Any:
    """``value`` as the annotated type ``kind`` (lists become tuples, ints become floats); else an error."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _coerce(value, kind, name, what)
    bad = InoError(f"bad {what} configuration: {name} must be {_describe(kind)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad
        items = args[:1] * len(value) if origin is list or args[-1:] == (...,) else args
        if len(items) != len(value):
            raise bad
        coerced = [_coerce(v, k, name, what) for v, k in zip(value, items, strict=True)]
        return tuple(coerced) if origin is tuple else coerced
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            raise bad from None
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise bad
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad
    return value


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (tuple, list):
        count = len(args) if origin is tuple else "any number of"
        return f"a list of {count} {_describe(args[0]).split(' ', 1)[1]}s"
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}.get(kind, str(kind))


class _Group:
    """Validation shared by the groups: field types, ``choices`` and ``rule``, then the group's ``_relations``."""

    _what: ClassVar[str] = "training"
    _prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        hints = typing.get_type_hints(type(self))
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            name = f"{self._prefix}{spec.name}"
            value = _coerce(getattr(self, spec.name), hints[spec.name], name, self._what)
            object.__setattr__(self, spec.name, value)  # frozen groups too: the value is only normalised
            choices, rule = spec.metadata.get("choices"), spec.metadata.get("rule")
            if choices and value not in choices:
                raise InoError(f"bad {self._what} configuration: {name} must be one of {choices}, got {value!r}")
            if rule is not None and value is not None and not rule.test(value):
                raise InoError(f"bad {self._what} configuration: {name} must be {rule.text}, got {value!r}")
        for ok, message in self._relations():
            if not ok:
                raise InoError(f"bad {self._what} configuration: {message}")

    def _relations(self) -> list[tuple[bool, str]]:
        return []


@dataclass
class ClipConfig(_Group):
    """How clips are cut from videos (docs/method.md §1): 4 frames of the video at 8 fps, 5 clips per video."""

    _prefix: ClassVar[str] = "clips."
    clip_len: int = setting(4, rule=EVEN)
    sampling: str = setting("fps", choices=SAMPLINGS)
    target_fps: float = setting(8.0, rule=above(0))
    frame_stride: int = setting(8, rule=at_least(1))
    clips_per_video: int = setting(5, rule=at_least(1))
    backend: str = setting("auto", choices=VIDEO_BACKENDS)
    cache_dir: str | None = None
    workers: int = setting(4, rule=at_least(0))
    index_workers: int = setting(8, rule=at_least(1))


@dataclass(frozen=True)
class AugmentConfig(_Group):
    """Crop sizes, scales and photometric settings (docs/method.md §2); the defaults are the authors'.

    ``jitter`` is ColorJitter's (brightness, contrast, saturation, hue), applied with probability ``jitter_p``;
    ``blur_sigma`` bounds the uniformly drawn Gaussian sigma (= PIL radius). Scales are fractions of the frame
    area. Frozen (and hashable): the loader workers each hold a copy.
    """

    _what: ClassVar[str] = "augmentation"
    _prefix: ClassVar[str] = "augment."
    global_size: int = setting(224, rule=at_least(1))
    local_size: int = setting(64, rule=at_least(1))
    n_local: int = setting(8, rule=at_least(1))
    global_scale: tuple[float, float] = setting((0.80, 0.95), rule=pair_within(0, 1))
    local_scale: tuple[float, float] = setting((0.05, 0.80), rule=pair_within(0, 1))
    ratio: tuple[float, float] = setting((3 / 4, 4 / 3), rule=pair_within(0, math.inf))
    flip_p: float = setting(0.5, rule=within(0, 1))
    jitter: tuple[float, float, float, float] = setting((0.4, 0.4, 0.2, 0.1), rule=JITTER)
    jitter_p: float = setting(0.8, rule=within(0, 1))
    grayscale_p: float = setting(0.2, rule=within(0, 1))
    blur_p: float = setting(0.5, rule=within(0, 1))
    blur_sigma: tuple[float, float] = setting((0.1, 2.0), rule=pair_within(0, math.inf))
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = setting((0.229, 0.224, 0.225), rule=POSITIVE_ALL)
    global_aug: str = setting("none", choices=GLOBAL_AUGS)

    @classmethod
    def with_threshold(cls, s: float, **overrides: Any) -> AugmentConfig:
        """The Fig. 5 ablation: local scale (0.05, s), global scale (s, 0.95); ``s = 0.8`` is the default."""
        return cls(global_scale=(s, 0.95), local_scale=(0.05, s), **overrides)


@dataclass
class ModelConfig(_Group):
    """Student/teacher backbone and the shared projection head (docs/method.md §3)."""

    _prefix: ClassVar[str] = "model."
    arch: str = setting("vit_small", choices=tuple(VIT_ARCHS))
    patch_size: int = setting(8, choices=PATCH_SIZES)
    img_size: int = setting(64, rule=at_least(1))
    drop_path: float = setting(0.1, rule=FRACTION)
    out_dim: int = setting(4096, rule=at_least(1))
    hidden_dim: int = setting(2048, rule=at_least(1))
    bottleneck_dim: int = setting(256, rule=at_least(1))
    init: str = "random"

    def _relations(self) -> list[tuple[bool, str]]:
        return [
            (self.img_size % self.patch_size == 0, "model.img_size must be a multiple of model.patch_size"),
            (self.init == "random" or Path(self.init).is_file(), f"model.init {self.init!r}: no such weights file"),
        ]


@dataclass
class MaskConfig(_Group):
    """In-generative masking (docs/method.md §4): one random mask per step (faithful) or per-clip blocks (paper)."""

    _prefix: ClassVar[str] = "masking."
    mode: str = setting("random_shared", choices=MASK_MODES)
    prob: float = setting(0.5, rule=within(0, 1))
    ratio: tuple[float, float] = setting((0.1, 0.5), rule=OPEN_PAIR)


@dataclass
class LossConfig(_Group):
    """Loss weights (out, mim, aff), temperatures and centre momentum (docs/method.md §5); weight 0 drops a term."""

    _prefix: ClassVar[str] = "loss."
    w_out: float = setting(1.0, rule=at_least(0))
    w_mim: float = setting(1.0, rule=at_least(0))
    w_aff: float = setting(1.0, rule=at_least(0))
    out_mode: str = setting("faithful", choices=OUT_MODES)
    tau_s: float = setting(0.1, rule=above(0))
    tau_t: float = setting(0.04, rule=above(0))
    tau_t_aff: float = setting(0.04, rule=above(0))
    center_momentum: float = setting(0.9, rule=within(0, 1))

    def _relations(self) -> list[tuple[bool, str]]:
        return [(max(self.w_out, self.w_mim, self.w_aff) > 0, "at least one of loss.w_out, w_mim, w_aff must be > 0")]


@dataclass
class OptimConfig(_Group):
    """AdamW and its schedules (docs/method.md §6.1); ``base_lr`` is scaled by total clips per step / 256."""

    _prefix: ClassVar[str] = "optim."
    batch_size: int = setting(4, rule=at_least(1))
    base_lr: float = setting(3e-3, rule=at_least(0))
    min_lr: float = setting(1e-6, rule=at_least(0))
    epochs: int = setting(25, rule=at_least(1))
    warmup_epochs: int = setting(5, rule=at_least(0))
    weight_decay: float = setting(0.04, rule=at_least(0))
    weight_decay_end: float = setting(0.4, rule=at_least(0))
    momentum_teacher: float = setting(0.996, rule=within(0, 1))
    clip_grad: float = setting(3.0, rule=at_least(0))
    freeze_last_layer: int = setting(1, rule=at_least(0))
    precision: str = setting("auto", choices=PRECISIONS)
    #: ``authors`` replays the schedule the authors' loop really ran (docs/method.md §6.3): schedules built for
    #: ``epochs`` epochs, entered one epoch in, ``epochs - 1`` epochs trained, the last layer never frozen
    schedule: str = setting("clean", choices=SCHEDULES)

    def _relations(self) -> list[tuple[bool, str]]:
        return [
            (self.warmup_epochs <= self.epochs, "optim.warmup_epochs must not exceed optim.epochs"),
            (self.schedule == "clean" or self.epochs >= 2, "optim.schedule authors trains epochs - 1: epochs >= 2"),
        ]


@dataclass
class RunConfig(_Group):
    """Run bookkeeping: seed, length, checkpoints, logging cadence and optional periodic DAVIS evaluation."""

    _prefix: ClassVar[str] = "run."
    seed: int = setting(0, rule=at_least(0))
    max_steps: int | None = setting(None, rule=at_least(1))
    checkpoint_every: int = setting(1000, rule=at_least(1))
    keep_last: int = setting(3, rule=at_least(1))
    log_every: int = setting(10, rule=at_least(1))
    deterministic: bool = False
    eval_davis_root: str | None = None
    eval_every: int = setting(0, rule=at_least(0))
    eval_sequences: str | None = None
    eval_short_side: int = setting(480, rule=at_least(8))


#: the groups of a training configuration, by their YAML / command-line names
GROUPS: dict[str, type[_Group]] = {
    "clips": ClipConfig,
    "augment": AugmentConfig,
    "model": ModelConfig,
    "masking": MaskConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


@dataclass
class TrainConfig:
    """Everything a training run depends on; ``data`` names the videos (folders, globs or CSV/TXT lists)."""

    data: list[str] = field(default_factory=list)
    output_dir: str = "runs/ino"
    clips: ClipConfig = field(default_factory=ClipConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskConfig = field(default_factory=MaskConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        """Check every group again (code may have edited them since they were built)."""
        for name in GROUPS:
            getattr(self, name).validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples) for YAML, JSON and checkpoints (loadable with ``weights_only=True``)."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "configuration") -> TrainConfig:
        """A validated configuration from nested plain data; an unknown key is an error naming it and ``where``."""
        config = cls()
        for key, value in data.items():
            if key in GROUPS:
                if not isinstance(value, dict):
                    raise InoError(f"{where}: {key} must be a mapping of settings")
                group = GROUPS[key]
                names = {f.name for f in dataclasses.fields(group)}
                unknown = sorted(set(value) - names)
                if unknown:
                    raise InoError(f"{where}: unknown setting(s) {', '.join(f'{key}.{u}' for u in unknown)}")
                current = dataclasses.asdict(getattr(config, key))
                try:
                    setattr(config, key, group(**{**current, **value}))
                except InoError as error:
                    raise InoError(f"{where}: {error}") from None
            elif key == "data":
                paths = [value] if isinstance(value, str) else value
                if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                    raise InoError(f"{where}: data must be a path or a list of paths")
                config.data = list(paths)
            elif key == "output_dir":
                config.output_dir = str(value)
            else:
                raise InoError(f"{where}: unknown setting {key!r}")
        return config
