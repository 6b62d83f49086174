"""A procedural, deterministic DAVIS-2017-layout benchmark: textured objects moving over textured backgrounds.

Each sequence has a few objects of different shapes and sizes, each with its own texture, that translate, rotate
and scale, occlude one another in a fixed depth order, and may leave and re-enter the frame, over a background
texture that pans. Optional photometric changes (brightness drift, blur, fresh noise per frame; off by default)
alter the frames only. Ground truth is exact by construction: an object's texture and its mask are warped with the
same nearest-neighbour affine map, and the id map holds the front-most object at every pixel. Every object is
visible in frame 0, as DAVIS semi-supervised evaluation requires.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ino.data.davis import write_mask
from ino.errors import InoError
from ino.utils.atomic import atomic_write_text
from ino.utils.outputs import claim_file, exclusive, is_made, mark_made, record_file, remove_made

RESOLUTION = "480p"
#: written into the benchmark's root before its folders: what marks them as this generator's to replace
RECORD_NAME = ".ino-synth.json"


@dataclass(frozen=True)
class SynthConfig:
    """Difficulty knobs. Sizes in pixels; speeds per frame."""

    height: int = 180
    width: int = 320
    frames: int = 24
    min_objects: int = 2
    max_objects: int = 4
    min_object_size: float = 0.18
    max_object_size: float = 0.45
    max_speed: float = 4.0
    max_rotation_deg: float = 4.0
    max_scale_rate: float = 0.015
    background_speed: float = 1.5
    jpeg_quality: int = 92
    #: photometric changes, 0 = off: real video's lighting, focus and sensor noise, which a matcher of raw pixel
    #: patches cannot absorb (random-init features are close to one); they change the frames, never the truth
    brightness_drift: float = 0.0  # peak relative brightness change, one sine period per sequence
    max_blur: float = 0.0  # Gaussian blur sigma of a frame, drawn in [0, max_blur] pixels
    frame_noise: float = 0.0  # sigma of fresh Gaussian noise per frame, grey levels


@dataclass(frozen=True)
class ObjectTrack:
    """One object: its texture and mask in a local square canvas, and its motion over time."""

    texture: np.ndarray
    mask: np.ndarray
    start: tuple[float, float]
    velocity: tuple[float, float]
    angle_start: float
    angular_speed: float
    scale_rate: float

    def transform(self, t: int) -> np.ndarray:
        """2x3 affine map from the local canvas to frame coordinates at frame t."""
        size = self.mask.shape[0]
        angle = self.angle_start + self.angular_speed * t
        scale = (1 + self.scale_rate) ** t
        centre = (self.start[0] + self.velocity[0] * t, self.start[1] + self.velocity[1] * t)
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        matrix[:, 2] += np.array(centre) - size / 2
        return matrix


@dataclass(frozen=True)
class SequenceSpec:
    """Everything needed to render one sequence; objects are listed back to front (id = position + 1)."""

    name: str
    background: np.ndarray
    background_velocity: tuple[float, float]
    objects: tuple[ObjectTrack, ...]
    config: SynthConfig


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Two-colour pattern (stripes, checks or blobs) with fine noise, uint8 RGB."""
    colours = rng.integers(20, 236, size=(2, 3)).astype(np.float32)
    kind = rng.integers(3)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 18)
        pattern = 0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period)
    elif kind == 1:
        cell = int(rng.integers(5, 14))
        pattern = (((ys // cell) + (xs // cell)) % 2).astype(np.float32)
    else:
        coarse = rng.random((max(height // 12, 2), max(width // 12, 2))).astype(np.float32)
        pattern = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    image = colours[0] * (1 - pattern[..., None]) + colours[1] * pattern[..., None]
    image += rng.normal(0, 6, size=image.shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Ellipse, rectangle or star-like polygon filling most of a size x size canvas."""
    mask = np.zeros((size, size), dtype=np.uint8)
    centre = size // 2
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(size * rng.uniform(0.25, 0.48)), int(size * rng.uniform(0.2, 0.48)))
        cv2.ellipse(mask, (centre, centre), axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    elif kind == 1:
        half_w, half_h = int(size * rng.uniform(0.2, 0.45)), int(size * rng.uniform(0.15, 0.45))
        mask[centre - half_h : centre + half_h, centre - half_w : centre + half_w] = 1
    else:
        corners = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radii = size * rng.uniform(0.2, 0.48, corners)
        points = np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [points.round().astype(np.int32)], 1)
    return mask


def sequence_name(index: int) -> str:
    """The name of a benchmark's sequence ``index`` (known before it is drawn: outputs are checked first)."""
    return f"synth-{index:03d}"


def make_sequence(config: SynthConfig, seed: int, index: int) -> SequenceSpec:
    """Draw one sequence's objects and motions from a generator seeded by (seed, index)."""
    rng = np.random.default_rng([seed, index])
    height, width = config.height, config.width
    n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    objects = []
    for _ in range(n_objects):
        size = int(min(height, width) * rng.uniform(config.min_object_size, config.max_object_size))
        speed = rng.uniform(0.3, 1.0) * config.max_speed
        heading = rng.uniform(0, 2 * math.pi)
        objects.append(
            ObjectTrack(
                texture=_texture(rng, size, size),
                mask=_shape_mask(rng, size),
                start=(rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height),
                velocity=(speed * math.cos(heading), speed * math.sin(heading)),
                angle_start=float(rng.uniform(0, 360)),
                angular_speed=float(rng.uniform(-1, 1) * config.max_rotation_deg),
                scale_rate=float(rng.uniform(-1, 1) * config.max_scale_rate),
            )
        )
    pan = rng.uniform(-1, 1, 2) * config.background_speed
    margin = math.ceil(config.background_speed * config.frames) + 1
    background = _texture(rng, height + 2 * margin, width + 2 * margin)
    return SequenceSpec(sequence_name(index), background, (float(pan[0]), float(pan[1])), tuple(objects), config)


def object_layer(spec: SequenceSpec, obj: ObjectTrack, t: int) -> tuple[np.ndarray, np.ndarray]:
    """An object's warped texture (H, W, 3) and coverage (H, W) bool at frame t, nearest-neighbour sampled."""
    size = (spec.config.width, spec.config.height)
    matrix = obj.transform(t)
    texture = cv2.warpAffine(obj.texture, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
    coverage = cv2.warpAffine(obj.mask, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
    return texture, coverage.astype(bool)


def render_frame(spec: SequenceSpec, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, uint8 id map) of frame t, compositing objects back to front."""
    config = spec.config
    margin = (spec.background.shape[0] - config.height) // 2
    dx, dy = (round(margin + v * t) for v in spec.background_velocity)
    image = spec.background[dy : dy + config.height, dx : dx + config.width].copy()
    ids = np.zeros((config.height, config.width), dtype=np.uint8)
    for object_id, obj in enumerate(spec.objects, start=1):
        texture, coverage = object_layer(spec, obj, t)
        image[coverage] = texture[coverage]
        ids[coverage] = object_id
    return image, ids


def photometric_changes(
    image: np.ndarray, config: SynthConfig, t: int, rng: np.random.Generator, phase: float
) -> np.ndarray:
    """Frame t with the config's brightness drift, blur and noise; ``rng`` draws the blur and noise in frame order."""
    if not (config.brightness_drift or config.max_blur or config.frame_noise):
        return image
    gain = 1 + config.brightness_drift * math.sin(2 * math.pi * t / config.frames + phase)
    changed = image.astype(np.float32) * gain
    sigma = rng.uniform(0, config.max_blur)
    if sigma > 0:
        changed = cv2.GaussianBlur(changed, (0, 0), sigma)
    changed += rng.normal(0, config.frame_noise, changed.shape).astype(np.float32)
    return changed.round().clip(0, 255).astype(np.uint8)


def _visible_first(first_ids: np.ndarray, n_objects: int) -> np.ndarray:
    """Id lookup that numbers the objects visible in frame 0 first (1..K), then any hidden behind others.

    DAVIS scores ids 1..K of the first frame; an object fully occluded at the start keeps an id above K, so it is
    drawn as itself but not scored, as in real DAVIS ground truth.
    """
    present = np.zeros(n_objects + 1, dtype=bool)
    present[np.unique(first_ids)] = True
    order = [i for i in range(1, n_objects + 1) if present[i]] + [i for i in range(1, n_objects + 1) if not present[i]]
    lookup = np.zeros(256, dtype=np.uint8)
    lookup[order] = np.arange(1, n_objects + 1)
    return lookup


def write_benchmark(out: str | Path, sequences: int = 8, config: SynthConfig | None = None, seed: int = 0) -> list[str]:
    """Write JPEG frames, palette ground truth for every frame and ``ImageSets/2017/val.txt``; returns names.

    ``out`` may be new, or hold anything but a dataset (:func:`synth_folder`).
    """
    config = config or SynthConfig()
    settings = {"format": "davis", "sequences": sequences, "seed": seed, **dataclasses.asdict(config)}
    with synth_folder(out, ["JPEGImages", "Annotations", "ImageSets"], settings, "ino synth") as out:
        return _write_sequences(out, sequences, config, seed)


@contextlib.contextmanager
def synth_folder(
    out: str | Path, parts: list[str], settings: dict[str, object], purpose: str, files: tuple[str, ...] = ()
) -> Iterator[Path]:
    """``out`` held as its one writer, with its dataset folders ``parts`` empty, marked and ready to be written.

    Each part must be absent or an earlier ``ino synth`` benchmark's (marked as ``ino``'s, with ``.ino-synth.json``
    beside them), which is replaced whole, so that no frame of a longer earlier benchmark lingers; each of ``files``
    (e.g. a list at the root) absent or written by ``ino``, and recorded as such once the block is done. Anything
    else there stops the command before any write: a real dataset would be overwritten and its lists rewritten.
    """
    with exclusive(out, purpose) as root:
        for name in files:
            claim_file(root / name, what="list")
        folders = [root / part for part in parts]
        present = [folder for folder in folders if folder.exists()]
        if present and not ((root / RECORD_NAME).is_file() and all(is_made(folder) for folder in present)):
            names = ", ".join(f"{folder.name}/" for folder in present)
            raise InoError(
                f"{root} already holds a dataset ({names}) that ino synth did not write: choose a new or empty folder"
            )
        atomic_write_text(root / RECORD_NAME, json.dumps(settings) + "\n")
        for folder in folders:
            remove_made(folder)
            mark_made(folder)
        yield root
        for name in files:
            record_file(root / name)


def _write_sequences(out: Path, sequences: int, config: SynthConfig, seed: int) -> list[str]:
    names = []
    for index in range(sequences):
        spec = make_sequence(config, seed, index)
        image_dir = out / "JPEGImages" / RESOLUTION / spec.name
        mask_dir = out / "Annotations" / RESOLUTION / spec.name
        image_dir.mkdir(parents=True, exist_ok=True)
        lookup = None
        photometry = np.random.default_rng([seed, index, 1])  # its own stream: the geometry does not depend on it
        phase = photometry.uniform(0, 2 * math.pi)
        for t in range(config.frames):
            image, ids = render_frame(spec, t)
            if lookup is None:
                lookup = _visible_first(ids, len(spec.objects))
            image = photometric_changes(image, config, t, photometry, phase)
            Image.fromarray(image).save(image_dir / f"{t:05d}.jpg", quality=config.jpeg_quality)
            write_mask(mask_dir / f"{t:05d}.png", lookup[ids])
        names.append(spec.name)
    sets = out / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "val.txt").write_text("".join(f"{name}\n" for name in names))
    return names
