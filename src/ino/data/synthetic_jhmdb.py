"""A deterministic synthetic benchmark in the JHMDB layout: articulated stick figures whose 15 joints are known
exactly.

Each video shows one figure (the JHMDB puppet's 15 joints and 14 bones, each bone and joint in its own colour, so
that a matcher can tell left from right) walking, waving or jumping over a smooth textured background. Joint
positions are computed in floating point and drawn with sub-pixel accuracy (pixel centres at integer coordinates),
so the ground truth is exact: ``pos_img`` = position + 1, float64, shape (2, 15, T), as JHMDB stores it.

The first videos carry the cases real data has (docs/evaluation.md, "JHMDB"), in this order:

0. a plain walk;
1. a figure that walks out of the frame (joints outside the image, negative coordinates included);
2. unlabelled joints: a few joints stored as (0, 0) on some frames;
3. a video of one frame (nothing to score);
4. a figure whose feet are below the bottom edge from frame 0 on.

``broken=True`` adds, under ``Rename_Images/broken/`` and ``joint_positions/broken/``, a video with a missing frame,
one whose joint file annotates one frame too many, and one with an unreadable joint file; they are left out of the
split list written beside the data, so only a loader that scans every folder (or a list naming them) meets them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ino.data.jhmdb import FRAMES_DIR, JOINTS_DIR, JOINTS_FILE, N_JOINTS, SKELETON, write_list
from ino.data.synthetic import synth_folder
from ino.utils.atomic import atomic_write

LIST_NAME = "synth_list.txt"
ACTIONS = ("synth_walk", "synth_wave", "synth_jump")
#: user cases by video index (module docstring)
LEAVES_FRAME, UNLABELLED, ONE_FRAME, FEET_OUTSIDE = 1, 2, 3, 4
_SHIFT = 4  # cv2 fixed-point bits: coordinates drawn to 1/16 pixel
_BONE_COLOURS = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
     [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255], [170, 110, 40], [128, 0, 0]],
    dtype=np.uint8,
)  # fmt: skip


@dataclass(frozen=True)
class JhmdbSynthConfig:
    """Frame size (JHMDB's is 240 x 320), frames per video, figure size and speed (pixels per frame)."""

    height: int = 240
    width: int = 320
    frames: int = 24
    figure_height: float = 0.6  # of the frame height
    max_speed: float = 2.0


@dataclass(frozen=True)
class Figure:
    """One figure's action, size, start, velocity and limb phases; :meth:`joints` gives its pose at any frame."""

    action: str
    size: float
    start: tuple[float, float]  # belly (x, y) at frame 0
    velocity: tuple[float, float]
    phase: float
    period: float

    def joints(self, t: int) -> np.ndarray:
        """(15, 2) float pixel (x, y) of the joints at frame t (JHMDB order)."""
        swing = math.sin(2 * math.pi * t / self.period + self.phase)
        bob = -abs(swing) * 0.08 * self.size if self.action == "synth_jump" else 0.0
        belly = np.array([self.start[0] + self.velocity[0] * t, self.start[1] + self.velocity[1] * t + bob])
        lean = 0.08 * swing if self.action == "synth_walk" else 0.03 * swing

        def limb(origin: np.ndarray, angle: float, length: float) -> np.ndarray:
            """Point ``length`` x size from ``origin``, ``angle`` radians from straight down (positive towards +x)."""
            return origin + self.size * length * np.array([math.sin(angle), math.cos(angle)])

        neck = limb(belly, math.pi + lean, 0.32)
        face = limb(neck, math.pi + lean, 0.14)
        across = np.array([math.cos(lean), -math.sin(lean)]) * self.size
        shoulders = (neck - 0.11 * across, neck + 0.11 * across)  # right, left (the figure faces the viewer)
        pelvis = limb(belly, lean, 0.06)
        hips = (pelvis - 0.07 * across, pelvis + 0.07 * across)
        waving = self.action == "synth_wave"
        arm_angles = (
            (-0.25 - 0.25 * swing, -0.15),
            (2.4 + 0.5 * swing, 0.6 * swing) if waving else (0.25 * swing, 0.15),
        )
        stride = 0.35 * swing if self.action == "synth_walk" else 0.1
        leg_angles = ((stride, -0.1), (-stride, -0.1))
        elbows, wrists, knees, ankles = [], [], [], []
        for side in (0, 1):
            sign = -1 if side == 0 else 1
            upper, fore = arm_angles[side]
            elbows.append(limb(shoulders[side], sign * 0.2 + upper, 0.17))
            wrists.append(limb(elbows[side], sign * 0.2 + upper + fore, 0.16))
            thigh, shin = leg_angles[side]
            knees.append(limb(hips[side], thigh, 0.24))
            ankles.append(limb(knees[side], thigh + shin, 0.24))
        order = [neck, belly, face, shoulders[0], shoulders[1], hips[0], hips[1], elbows[0], elbows[1]]
        order += [knees[0], knees[1], wrists[0], wrists[1], ankles[0], ankles[1]]
        return np.stack(order)


def make_figure(config: JhmdbSynthConfig, seed: int, index: int) -> Figure:
    """Draw video ``index``'s figure from a generator seeded by (seed, index); the user cases fix some of it."""
    rng = np.random.default_rng([seed, index])
    action = ACTIONS[index % len(ACTIONS)]
    size = config.figure_height * config.height * rng.uniform(0.85, 1.0)
    start = (config.width * rng.uniform(0.35, 0.65), config.height * rng.uniform(0.45, 0.55))
    speed = config.max_speed * rng.uniform(0.3, 1.0) if action == "synth_walk" else 0.0
    velocity = (speed * rng.choice([-1.0, 1.0]), 0.0)
    if index == LEAVES_FRAME:  # crosses the left edge by the last frame
        action, start = "synth_walk", (config.width * 0.3, start[1])
        velocity = (-(start[0] + 0.4 * size) / max(config.frames - 1, 1), 0.0)
    if index == FEET_OUTSIDE:  # ankles below the bottom edge from frame 0 on
        start = (start[0], config.height - 0.35 * size)
    return Figure(action, size, start, velocity, float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(10, 16)))


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random colour field with fine noise, uint8 RGB."""
    coarse = rng.uniform(40, 215, size=(max(height // 40, 2), max(width // 40, 2), 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 5, size=image.shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def _fixed(point: np.ndarray) -> tuple[int, int]:
    """A float pixel position in cv2's fixed point (``_SHIFT`` fractional bits)."""
    x, y = np.rint(np.asarray(point, dtype=np.float64) * (1 << _SHIFT)).astype(np.int64)
    return int(x), int(y)


def render(background: np.ndarray, joints: np.ndarray, size: float) -> np.ndarray:
    """The frame: coloured bones, then a dark-rimmed disc per joint, each joint with its own hue."""
    image = background.copy()
    thickness = max(2, round(size * 0.045))
    for colour, (a, b) in zip(_BONE_COLOURS, SKELETON, strict=True):
        cv2.line(
            image, _fixed(joints[a]), _fixed(joints[b]), tuple(int(c) for c in colour), thickness, cv2.LINE_AA, _SHIFT
        )
    radius = (thickness + 1) * (1 << _SHIFT)
    for j, point in enumerate(joints):
        hue = np.uint8([[[round(180 * j / N_JOINTS), 255, 230]]])
        colour = tuple(int(c) for c in cv2.cvtColor(hue, cv2.COLOR_HSV2RGB)[0, 0])
        cv2.circle(image, _fixed(point), radius + (1 << _SHIFT), (20, 20, 20), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, _fixed(point), radius, colour, -1, cv2.LINE_AA, _SHIFT)
    return image


def _save_mat(path: Path, joints: np.ndarray, labelled: np.ndarray, size: float) -> None:
    """joint_positions.mat as JHMDB stores it: pos_img (2, 15, T) 1-based float64, pos_world, scale, viewpoint."""
    from scipy.io import savemat

    pos_img = np.where(labelled[..., None], joints + 1.0, 0.0).transpose(2, 1, 0)
    centre = pos_img.mean(axis=1, keepdims=True)
    contents = {
        "pos_img": pos_img,
        "pos_world": (pos_img - centre) / size,
        "scale": np.full((1, joints.shape[0]), size),
        "viewpoint": "E",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: savemat(stream, contents))


def _write_video(root: Path, name: str, frames: list[np.ndarray]) -> None:
    folder = root / FRAMES_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(frames, start=1):
        Image.fromarray(image).save(folder / f"{t:05d}.png")


def write_jhmdb_benchmark(
    out: str | Path, videos: int = 6, config: JhmdbSynthConfig | None = None, seed: int = 0, broken: bool = False
) -> list[str]:
    """Write the frames, joint files and ``synth_list.txt`` (UVC form); returns the listed video names."""
    config = config or JhmdbSynthConfig()
    settings = {"format": "jhmdb", "videos": videos, "seed": seed, "broken": broken, **dataclasses.asdict(config)}
    parts = [FRAMES_DIR, JOINTS_DIR]
    with synth_folder(out, parts, settings, "ino synth --format jhmdb", files=(LIST_NAME,)) as out:
        names = []
        for index in range(videos):
            figure = make_figure(config, seed, index)
            n_frames = 1 if index == ONE_FRAME else config.frames
            joints = np.stack([figure.joints(t) for t in range(n_frames)])
            labelled = np.ones(joints.shape[:2], dtype=bool)
            if index == UNLABELLED:
                labelled[1::3, 12] = False  # left wrist on every third frame from frame 1
                labelled[2, 2] = False  # face on frame 2
            background = _background(np.random.default_rng([seed, index, 1]), config.height, config.width)
            name = f"{figure.action}/figure_{index:03d}"
            _write_video(out, name, [render(background, pose, figure.size) for pose in joints])
            _save_mat(out / JOINTS_DIR / name / JOINTS_FILE, joints, labelled, figure.size)
            names.append(name)
        write_list(out / LIST_NAME, names)
        if broken:
            _write_broken(out, config, seed)
        return names


def _write_broken(out: Path, config: JhmdbSynthConfig, seed: int) -> None:
    """broken/missing_frame (00003.png absent), broken/frame_count (T = frames + 1), broken/unreadable_mat."""
    figure = make_figure(config, seed, 0)
    joints = np.stack([figure.joints(t) for t in range(4)])
    background = _background(np.random.default_rng([seed, 0, 1]), config.height, config.width)
    frames = [render(background, pose, figure.size) for pose in joints]
    labelled = np.ones(joints.shape[:2], dtype=bool)
    for name in ("broken/missing_frame", "broken/frame_count", "broken/unreadable_mat"):
        _write_video(out, name, frames)
        _save_mat(out / JOINTS_DIR / name / JOINTS_FILE, joints, labelled, figure.size)
    (out / FRAMES_DIR / "broken/missing_frame/00003.png").unlink()
    extra = np.concatenate([joints, joints[-1:]])
    _save_mat(out / JOINTS_DIR / "broken/frame_count" / JOINTS_FILE, extra, np.ones(extra.shape[:2], bool), figure.size)
    (out / JOINTS_DIR / "broken/unreadable_mat" / JOINTS_FILE).write_bytes(b"not a MATLAB file\n")
