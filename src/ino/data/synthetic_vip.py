"""A procedural, deterministic benchmark in the ``VIP_Fine`` layout: walking figures made of labelled parts.

Each video holds one or two figures over a panning textured background. A figure is a set of parts with VIP
class ids (face, hair, upper clothes or coat, pants or skirt, arms, legs, shoes, and sometimes a hat, sun-glasses
or a scarf); the figure walks across the frame while its arms and legs swing about their joints, and parts and
figures occlude one another in a fixed depth order. Every part carries its own texture, warped with the same
nearest-neighbour map as its mask, so the part labels are exact by construction: the class map holds the
front-most part at every pixel.

As in VIP, only key frames are annotated (every ``key_every``-th frame from the first); the frames in between are
written too, so a propagation can go through them. Some classes are never drawn (gloves, dress, socks,
torso-skin), others only in some videos. With ``single_annotation_video`` the last video has its first frame
annotated and no other; ``missing_frame`` removes one annotated frame's image (the loader's error case).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ino.data.synthetic import _texture, synth_folder
from ino.data.vip import write_category_ids
from ino.utils.atomic import atomic_write_text

HAT, HAIR, SUNGLASSES, UPPER_CLOTHES, COAT, PANTS, SCARF, SKIRT, FACE = 1, 2, 4, 5, 7, 9, 11, 12, 13
LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG, LEFT_SHOE, RIGHT_SHOE = 14, 15, 16, 17, 18, 19
#: classes no figure ever wears: every video has classes absent from all its frames
NEVER_DRAWN = (3, 6, 8, 10)


@dataclass(frozen=True)
class SynthVipConfig:
    """Sizes in pixels, speeds per frame."""

    height: int = 180
    width: int = 320
    frames: int = 16
    key_every: int = 5
    max_figures: int = 2
    max_speed: float = 3.0
    swing_deg: float = 25.0
    swing_period: float = 12.0
    background_speed: float = 1.0
    jpeg_quality: int = 92
    single_annotation_video: bool = True
    missing_frame: bool = False


@dataclass(frozen=True)
class Part:
    """One labelled part: a textured canvas placed relative to a joint of its figure (units: pixels)."""

    class_id: int
    texture: np.ndarray
    mask: np.ndarray
    pivot: tuple[float, float]  # the joint, relative to the figure's centre
    offset: tuple[float, float]  # the part's centre relative to the joint, before the swing
    swing: float  # +1 / -1: swings with / against the figure's gait; 0: rigid


@dataclass(frozen=True)
class Figure:
    parts: tuple[Part, ...]  # back to front
    start: tuple[float, float]
    velocity: tuple[float, float]
    phase: float


@dataclass(frozen=True)
class VideoSpec:
    name: str
    background: np.ndarray
    background_velocity: tuple[float, float]
    figures: tuple[Figure, ...]  # back to front
    config: SynthVipConfig


def _part(
    rng: np.random.Generator,
    class_id: int,
    size: tuple[float, float],
    pivot: tuple[float, float],
    offset: tuple[float, float] = (0.0, 0.0),
    swing: float = 0.0,
    ellipse: bool = False,
) -> Part:
    width, height = max(2, round(size[0])), max(2, round(size[1]))
    mask = np.zeros((height, width), dtype=np.uint8)
    if ellipse:
        cv2.ellipse(mask, (width // 2, height // 2), (max(1, width // 2), max(1, height // 2)), 0, 0, 360, 1, -1)
    else:
        mask[:] = 1
    return Part(class_id, _texture(rng, height, width), mask, pivot, offset, swing)


def _figure(rng: np.random.Generator, config: SynthVipConfig) -> Figure:
    """A figure of height ``h``: parts listed back to front, the left limbs behind the body."""
    h = config.height * rng.uniform(0.55, 0.85)
    torso = UPPER_CLOTHES if rng.random() < 0.6 else COAT
    hips = PANTS if rng.random() < 0.7 else SKIRT
    shoulder, hip = (0.15 * h, -0.27 * h), (0.07 * h, 0.12 * h)
    arm, leg = (0.07 * h, 0.30 * h), (0.09 * h, 0.32 * h)
    parts = [
        _part(rng, LEFT_ARM, arm, (shoulder[0], shoulder[1]), (0, 0.15 * h), swing=-1),
        _part(rng, LEFT_LEG, leg, (hip[0], hip[1]), (0, 0.16 * h), swing=1),
        _part(rng, LEFT_SHOE, (0.12 * h, 0.05 * h), (hip[0], hip[1]), (0.02 * h, 0.34 * h), swing=1),
        _part(rng, RIGHT_LEG, leg, (-hip[0], hip[1]), (0, 0.16 * h), swing=-1),
        _part(rng, RIGHT_SHOE, (0.12 * h, 0.05 * h), (-hip[0], hip[1]), (-0.02 * h, 0.34 * h), swing=-1),
        _part(rng, hips, (0.26 * h, 0.12 * h if hips == PANTS else 0.18 * h), (0, 0.10 * h)),
        _part(rng, torso, (0.26 * h, 0.36 * h), (0, -0.12 * h)),
    ]
    if rng.random() < 0.4:
        parts.append(_part(rng, SCARF, (0.20 * h, 0.05 * h), (0, -0.28 * h)))
    parts += [
        _part(rng, RIGHT_ARM, arm, (-shoulder[0], shoulder[1]), (0, 0.15 * h), swing=1),
        _part(rng, FACE, (0.16 * h, 0.20 * h), (0, -0.38 * h), ellipse=True),
        _part(rng, HAIR, (0.17 * h, 0.08 * h), (0, -0.47 * h), ellipse=True),
    ]
    if rng.random() < 0.4:
        parts.append(_part(rng, SUNGLASSES, (0.12 * h, 0.03 * h), (0, -0.39 * h)))
    if rng.random() < 0.4:
        parts.append(_part(rng, HAT, (0.20 * h, 0.06 * h), (0, -0.52 * h)))
    speed = rng.uniform(0.3, 1.0) * config.max_speed
    heading = rng.choice([0.0, math.pi]) + rng.uniform(-0.3, 0.3)
    start = (rng.uniform(0.25, 0.75) * config.width, config.height * rng.uniform(0.45, 0.6))
    velocity = (speed * math.cos(heading), speed * math.sin(heading))
    return Figure(tuple(parts), start, velocity, rng.uniform(0, 2 * math.pi))


def make_video(config: SynthVipConfig, seed: int, index: int) -> VideoSpec:
    """Draw one video's figures and motions from a generator seeded by (seed, index)."""
    rng = np.random.default_rng([seed, index, 7])
    figures = tuple(_figure(rng, config) for _ in range(int(rng.integers(1, config.max_figures + 1))))
    pan = rng.uniform(-1, 1, 2) * config.background_speed
    margin = math.ceil(config.background_speed * config.frames) + 1
    background = _texture(rng, config.height + 2 * margin, config.width + 2 * margin)
    return VideoSpec(f"videos{index + 1}", background, (float(pan[0]), float(pan[1])), figures, config)


def part_transform(figure: Figure, part: Part, t: int, config: SynthVipConfig) -> np.ndarray:
    """2x3 affine map from the part's canvas to frame coordinates at frame t."""
    angle = part.swing * math.radians(config.swing_deg) * math.sin(2 * math.pi * t / config.swing_period + figure.phase)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    height, width = part.mask.shape
    centre = np.array([figure.start[0] + figure.velocity[0] * t, figure.start[1] + figure.velocity[1] * t])
    shift = rotation @ (np.array(part.offset) - np.array([width / 2, height / 2])) + np.array(part.pivot) + centre
    return np.hstack([rotation, shift[:, None]])


def part_layer(spec: VideoSpec, figure: Figure, part: Part, t: int) -> tuple[np.ndarray, np.ndarray]:
    """A part's warped texture (H, W, 3) and coverage (H, W) bool at frame t, nearest-neighbour sampled."""
    size = (spec.config.width, spec.config.height)
    matrix = part_transform(figure, part, t, spec.config)
    texture = cv2.warpAffine(part.texture, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
    coverage = cv2.warpAffine(part.mask, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
    return texture, coverage.astype(bool)


def render_frame(spec: VideoSpec, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, uint8 class map) of frame t, compositing figures and their parts back to front."""
    config = spec.config
    margin = (spec.background.shape[0] - config.height) // 2
    dx, dy = (round(margin + v * t) for v in spec.background_velocity)
    image = spec.background[dy : dy + config.height, dx : dx + config.width].copy()
    classes = np.zeros((config.height, config.width), dtype=np.uint8)
    for figure in spec.figures:
        for part in figure.parts:
            texture, coverage = part_layer(spec, figure, part, t)
            image[coverage] = texture[coverage]
            classes[coverage] = part.class_id
    return image, classes


def frame_name(t: int) -> str:
    """VIP's frame names: 12 digits (here frame t is ``t + 1``)."""
    return f"{t + 1:012d}"


def write_vip_benchmark(
    out: str | Path, videos: int = 4, config: SynthVipConfig | None = None, seed: int = 0
) -> list[str]:
    """Write ``Images/``, key-frame ``Annotations/Category_ids/`` and ``lists/val_videos.txt``; returns names."""
    config = config or SynthVipConfig()
    settings = {"format": "vip", "videos": videos, "seed": seed, **dataclasses.asdict(config)}
    with synth_folder(out, ["Images", "Annotations", "lists"], settings, "ino synth --format vip") as folder:
        names = [
            _write_video(folder, make_video(config, seed, i), last=i == videos - 1 and videos > 1)
            for i in range(videos)
        ]
        lists = folder / "lists"
        lists.mkdir(parents=True, exist_ok=True)
        atomic_write_text(lists / "val_videos.txt", "".join(f"{name}\n" for name in names))
        if config.missing_frame:
            annotated = sorted((folder / "Annotations" / "Category_ids" / names[0]).glob("*.png"))
            (folder / "Images" / names[0] / f"{annotated[-1].stem}.jpg").unlink()
        return names


def _write_video(out: Path, spec: VideoSpec, last: bool) -> str:
    config = spec.config
    image_dir = out / "Images" / spec.name
    label_dir = out / "Annotations" / "Category_ids" / spec.name
    image_dir.mkdir(parents=True, exist_ok=True)
    only_first = last and config.single_annotation_video
    for t in range(config.frames):
        image, classes = render_frame(spec, t)
        Image.fromarray(image).save(image_dir / f"{frame_name(t)}.jpg", quality=config.jpeg_quality)
        if t % config.key_every == 0 and not (only_first and t > 0):
            write_category_ids(label_dir / f"{frame_name(t)}.png", classes)
    return spec.name
