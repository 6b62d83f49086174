"""JHMDB keypoint data: the folder layout, split lists, joint files, the 15 joints and their skeleton, and the
per-video keypoint files ``ino`` writes and scores.

Layout (as distributed, and as CRW / CropMAE read it)::

    <root>/Rename_Images/<action>/<video>/00001.png, 00002.png, ...      frames, numbered from 1
    <root>/joint_positions/<action>/<video>/joint_positions.mat          pos_img (2, 15, T), 1-based pixel x, y

A video is named ``<action>/<video>``. Joints are returned **0-based** (``pos_img - 1``, as both references do),
shape (T, 15, 2) as (x, y) in pixels of the original frame. A joint stored as (0, 0) is *unlabelled*: JHMDB's
puppet annotations label every joint, but files made by other tools mark a missing joint with zeros. The
references do not treat zeros specially (they score them at (-1, -1)); :attr:`VideoJoints.labelled` lets a caller
choose.

Split lists (``--list``): one video per line, in any of the forms found in the wild, paths absolute or relative
(only their last ``<action>/<video>`` parts are used; the files are read under the root given):

    joint_positions/<action>/<video>/joint_positions.mat Rename_Images/<action>/<video>   (UVC, CropMAE: mat first)
    Rename_Images/<action>/<video> joint_positions/<action>/<video>/joint_positions.mat   (CRW's loader: frames first)
    <action>/<video>                                                                     (ino's own)

Nothing here imports torch: the PCK scorer reads its ground truth through this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ino.errors import InoError
from ino.utils.atomic import atomic_write, atomic_write_text

FRAMES_DIR = "Rename_Images"
JOINTS_DIR = "joint_positions"
JOINTS_FILE = "joint_positions.mat"

#: JHMDB's joint order (the order of ``pos_img``'s second axis; its README numbers them 1..15)
JOINT_NAMES = (
    "neck",
    "belly",
    "face",
    "right_shoulder",
    "left_shoulder",
    "right_hip",
    "left_hip",
    "right_elbow",
    "left_elbow",
    "right_knee",
    "left_knee",
    "right_wrist",
    "left_wrist",
    "right_ankle",
    "left_ankle",
)
N_JOINTS = len(JOINT_NAMES)

#: the 14 bones (joint index pairs, parent first) of the puppet: CRW's ``vis_pose`` parent table without its
#: duplicate neck-belly entry
SKELETON = (
    (1, 0),  # belly - neck
    (0, 2),  # neck - face
    (0, 3),  # neck - right shoulder
    (0, 4),  # neck - left shoulder
    (3, 7),  # right shoulder - right elbow
    (4, 8),  # left shoulder - left elbow
    (7, 11),  # right elbow - right wrist
    (8, 12),  # left elbow - left wrist
    (1, 5),  # belly - right hip
    (1, 6),  # belly - left hip
    (5, 9),  # right hip - right knee
    (6, 10),  # left hip - left knee
    (9, 13),  # right knee - right ankle
    (10, 14),  # left knee - left ankle
)

KEYPOINTS_FORMAT = "ino-jhmdb-keypoints"


@dataclass(frozen=True)
class VideoJoints:
    """Ground truth of one video: ``joints`` (T, 15, 2) 0-based pixel (x, y); ``labelled`` (T, 15) False where
    the file holds (0, 0)."""

    name: str
    joints: np.ndarray
    labelled: np.ndarray

    @property
    def n_frames(self) -> int:
        return self.joints.shape[0]


@dataclass(frozen=True)
class JhmdbVideo:
    """One checked video: its frames (1..T, contiguous), their size and its ground truth."""

    name: str
    frames: tuple[Path, ...]
    size: tuple[int, int]  # (H, W) of every frame
    truth: VideoJoints


@dataclass(frozen=True)
class JhmdbLayout:
    """Paths and readers of one JHMDB root."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def data_folders(self) -> list[Path]:
        """The dataset's own folders, where no output may go."""
        return [self.root / FRAMES_DIR, self.root / JOINTS_DIR]

    def frames_dir(self, name: str) -> Path:
        return self.root / FRAMES_DIR / name

    def joints_path(self, name: str) -> Path:
        return self.root / JOINTS_DIR / name / JOINTS_FILE

    def videos(self, list_file: str | Path | None = None) -> list[str]:
        """Video names from a split list (see the module docstring), or every video with a joint file, sorted."""
        if list_file is not None:
            return read_list(list_file, self)
        joints_root = self.root / JOINTS_DIR
        if not joints_root.is_dir():
            raise InoError(f"{joints_root}: no such folder (is {self.root} a JHMDB root?)")
        names = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in joints_root.glob(f"*/*/{JOINTS_FILE}"))
        if not names:
            raise InoError(f"{joints_root}: no <action>/<video>/{JOINTS_FILE} files")
        return names

    def joints(self, name: str) -> VideoJoints:
        """The ground truth of ``name``, read and checked (scoring needs nothing else)."""
        return read_joints(self.joints_path(name), name)

    def load(self, name: str) -> JhmdbVideo:
        """Frames and ground truth of ``name``, checked: frames 1..N without gaps, readable, one size, N = T."""
        truth = self.joints(name)
        frames = frame_paths(self.frames_dir(name))
        if len(frames) != truth.n_frames:
            raise InoError(
                f"video {name!r}: {self.joints_path(name)} annotates {truth.n_frames} frame(s) but "
                f"{self.frames_dir(name)} holds {len(frames)}"
            )
        sizes = {path: _image_size(path) for path in frames}
        first = sizes[frames[0]]
        for path, size in sizes.items():
            if size != first:
                raise InoError(f"{path}: frame is {size[1]}x{size[0]} but {frames[0].name} is {first[1]}x{first[0]}")
        return JhmdbVideo(name, tuple(frames), first, truth)


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the image header (no decoding)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise InoError(f"{path}: cannot read the frame ({error})") from None
    return height, width


def frame_paths(folder: Path) -> list[Path]:
    """``folder``'s PNG frames in number order; the numbers must run 1..N without a gap (one message otherwise)."""
    if not folder.is_dir():
        raise InoError(f"{folder}: no such frames folder")
    numbered = []
    for path in folder.glob("*.png"):
        if not path.stem.isdigit():
            raise InoError(f"{path}: frame name is not a number (expected 00001.png, 00002.png, ...)")
        numbered.append((int(path.stem), path))
    if not numbered:
        raise InoError(f"{folder}: no PNG frames")
    numbered.sort()
    for expected, (number, path) in enumerate(numbered, start=1):
        if number != expected:
            width = len(path.stem)
            raise InoError(
                f"{folder}: frame {expected:0{width}d}.png is missing (frames must be numbered 1..N without gaps)"
            )
    return [path for _, path in numbered]


def read_joints(path: Path, name: str | None = None) -> VideoJoints:
    """``pos_img`` of a joint_positions.mat as 0-based (T, 15, 2), with the (0, 0) entries flagged unlabelled."""
    from scipy.io import loadmat

    name = name or f"{path.parent.parent.name}/{path.parent.name}"
    if not path.is_file():
        raise InoError(f"video {name!r}: joint file {path} is missing")
    try:
        contents = loadmat(path)
    except Exception as error:  # scipy raises many types (ValueError, TypeError, MatReadError, ...) for bad files
        raise InoError(f"{path}: cannot read the .mat file ({type(error).__name__}: {error})") from None
    if "pos_img" not in contents:
        keys = ", ".join(k for k in contents if not k.startswith("__")) or "none"
        raise InoError(f"{path}: no 'pos_img' variable (variables: {keys})")
    positions = np.asarray(contents["pos_img"])
    if positions.shape[:2] != (2, N_JOINTS) or positions.ndim not in (2, 3):
        raise InoError(f"{path}: pos_img has shape {positions.shape}, expected (2, {N_JOINTS}, T)")
    if positions.ndim == 2:  # MATLAB drops a trailing singleton: one annotated frame
        positions = positions[:, :, None]
    if positions.shape[2] == 0:
        raise InoError(f"{path}: pos_img annotates no frame")
    if not np.issubdtype(positions.dtype, np.number) or not np.isfinite(positions).all():
        raise InoError(f"{path}: pos_img holds non-numeric or non-finite values")
    one_based = positions.astype(np.float64).transpose(2, 1, 0)
    labelled = ~((one_based[..., 0] == 0) & (one_based[..., 1] == 0))
    return VideoJoints(name, one_based - 1.0, labelled)


def _identity(token: str) -> tuple[str, bool]:
    """(``<action>/<video>``, is the joint file) named by one list entry."""
    parts = Path(token.replace("\\", "/")).parts
    is_mat = token.lower().endswith(".mat")
    if is_mat:
        parts = parts[:-1]
    parts = tuple(p for p in parts if p not in ("", "."))
    if len(parts) < 2:
        raise ValueError(f"{token!r} does not name an <action>/<video>")
    return f"{parts[-2]}/{parts[-1]}", is_mat


def read_list(list_file: str | Path, layout: JhmdbLayout) -> list[str]:
    """Video names of a split list; a bad line is one error naming the list and the line."""
    list_file = Path(list_file)
    try:
        text = list_file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InoError(f"{list_file}: cannot read the video list ({error})") from None
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{list_file}:{number}"
        try:
            if len(tokens) > 2:
                raise ValueError(f"{len(tokens)} entries, expected a joint file and a frames folder")
            identities = [_identity(token) for token in tokens]
        except ValueError as error:
            forms = "'<mat> <frames dir>', '<frames dir> <mat>' or '<action>/<video>'"
            raise InoError(f"{where}: {error} (a line is {forms})") from None
        if len(identities) == 2:
            if identities[0][1] == identities[1][1]:
                kind = "joint files" if identities[0][1] else "frames folders"
                raise InoError(f"{where}: two {kind}, expected one joint file and one frames folder")
            (frames, _), (joints, _) = sorted(identities, key=lambda identity: identity[1])
            if frames != joints:
                raise InoError(f"{where}: the joint file is video {joints!r} but the frames folder is {frames!r}")
        name = identities[0][0]
        if name in seen:
            raise InoError(f"{where}: video {name!r} is listed twice (first on line {seen[name]})")
        if not layout.joints_path(name).is_file():
            raise InoError(f"{where}: video {name!r} has no joint file {layout.joints_path(name)}")
        if not layout.frames_dir(name).is_dir():
            raise InoError(f"{where}: video {name!r} has no frames folder {layout.frames_dir(name)}")
        seen[name] = number
        names.append(name)
    if not names:
        raise InoError(f"{list_file}: the video list is empty")
    return names


def write_list(path: str | Path, names: Sequence[str]) -> Path:
    """A split list in the UVC / CropMAE form (``<mat> <frames dir>``, relative to the root), atomically."""
    lines = [f"{JOINTS_DIR}/{name}/{JOINTS_FILE} {FRAMES_DIR}/{name}\n" for name in names]
    return atomic_write_text(path, "".join(lines))


# --- predicted keypoints: one file per video ---------------------------------------------------------------------


def keypoints_path(results: str | Path, name: str, suffix: str = ".json") -> Path:
    """Where the keypoints of video ``<action>/<video>`` live in a results folder: ``<action>/<video><suffix>``."""
    return Path(results) / f"{name}{suffix}"


def write_keypoints(path: str | Path, name: str, joints: np.ndarray) -> Path:
    """Write predicted joints (T, 15, 2) 0-based pixel (x, y), NaN = no prediction, as JSON or NPZ (by suffix)."""
    path = Path(path)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"joints must have shape (T, {N_JOINTS}, 2), got {joints.shape}")
    if path.suffix == ".npz":
        return atomic_write(path, lambda stream: np.savez(stream, joints=joints, video=np.array(name)))
    frames = [[None if np.isnan(xy).any() else [float(xy[0]), float(xy[1])] for xy in frame] for frame in joints]
    document = {
        "format": KEYPOINTS_FORMAT,
        "version": 1,
        "video": name,
        "coordinates": "0-based pixel (x, y) in the original frame; null = no prediction",
        "joint_names": list(JOINT_NAMES),
        "joints": frames,
    }
    return atomic_write_text(path, json.dumps(document))


def read_keypoints(path: str | Path) -> np.ndarray:
    """Predicted joints (T, 15, 2) from a file :func:`write_keypoints` wrote (NaN = no prediction)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                joints = np.asarray(archive["joints"], dtype=np.float64)
        else:
            document = json.loads(path.read_text())
            if not isinstance(document, dict) or document.get("format") != KEYPOINTS_FORMAT:
                raise ValueError(f"not an {KEYPOINTS_FORMAT} file")
            joints = np.array(
                [[[math.nan, math.nan] if xy is None else xy for xy in frame] for frame in document["joints"]],
                dtype=np.float64,
            )
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise InoError(f"{path}: cannot read the keypoints ({type(error).__name__}: {error})") from None
    if joints.ndim != 3 or joints.shape[1:] != (N_JOINTS, 2) or joints.shape[0] == 0:
        raise InoError(f"{path}: keypoints have shape {joints.shape}, expected (T, {N_JOINTS}, 2)")
    return joints
