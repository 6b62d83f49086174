"""VIP (Video Instance-level Parsing) ``VIP_Fine`` folders: videos, their key frames and part-label PNGs.

Layout, as the ``VIP_Fine`` download unpacks (docs/evaluation.md, "VIP part propagation")::

    <root>/Images/<video>/<frame>.jpg                   the frames (in VIP_Fine: the key frames only)
    <root>/Annotations/Category_ids/<video>/<frame>.png  part classes 0..19 of the annotated key frames
    <root>/lists/<set>_videos.txt                       optional list of the videos of a split

``<root>/Category_ids/<video>/`` (the flattened layout of the VIP authors' ATEN README) is read too. Frames are
ordered by their numeric names (VIP names them ``%012d``, the frame's index in its source video). A frame may have
no annotation (it is propagated through, not scored); every annotation needs its frame.

Class ids are 0 (background) .. 19; 255 is read as "not annotated" and never scored, as the reference scorer
(CRW's ``eval_vip.py``) drops every ground-truth value outside 0..19. Any other value is an error naming the file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ino.errors import InoError
from ino.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

N_CLASSES = 20
IGNORE_ID = 255
#: Part names by id as the dataset's publishers register them (HCPLab-SYSU/ATEN ``vip.py``, ``load_vip``). The
#: evaluation scripts (ATEN ``evaluate/test_parsing.py``, CRW/CropMAE ``eval_vip.py``) print another order
#: (e.g. 3 "sun-glasses", 9 "gloves"); the ids, not the names, are what is scored.
CLASS_NAMES = (
    "background",
    "hat",
    "hair",
    "gloves",
    "sun-glasses",
    "upper-clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "torso-skin",
    "scarf",
    "skirt",
    "face",
    "left-arm",
    "right-arm",
    "left-leg",
    "right-leg",
    "left-shoe",
    "right-shoe",
)
FRAME_SUFFIXES = (".jpg", ".jpeg")


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Runs of digits compare as numbers: ``videos2`` before ``videos10``, ``9.jpg`` before ``10.jpg`` (CRW sorts
    frames by ``int(name)``; VIP's zero-padded names sort the same either way)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def _frame_key(path: Path) -> tuple[tuple[tuple[int, int | str], ...], str]:
    return _natural_key(path.stem), path.name


def _open_size(path: Path, what: str) -> tuple[int, int]:
    """(width, height) from an image file's header, without decoding it."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise InoError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InoError(f"{path}: cannot read the {what} ({error})") from None


def _decode(path: Path) -> tuple[np.ndarray, str]:
    try:
        with Image.open(path) as image:
            image.load()
            return np.array(image), image.mode
    except FileNotFoundError:
        raise InoError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InoError(f"{path}: cannot read the PNG ({error})") from None


def _first_value_above(ids: np.ndarray, limit: int, allowed: int | None = None) -> int | None:
    """The smallest value of ``ids`` above ``limit`` (other than ``allowed``), or None."""
    values = np.unique(ids)
    bad = values[(values > limit) & (values != (allowed if allowed is not None else -1))]
    return int(bad[0]) if bad.size else None


def read_category_ids(path: str | Path) -> np.ndarray:
    """A ground-truth part map as (H, W) uint8: class ids 0..19, 255 where nothing is annotated.

    Grayscale (8- or 16-bit) PNGs are read by value and palette PNGs by index, as ``PIL`` gives them to the
    reference scorer; a colour PNG or a value 20..254 is an error naming the file.
    """
    path = Path(path)
    array, mode = _decode(path)
    if array.ndim != 2:
        raise InoError(f"{path}: a category-id annotation must be a single-channel PNG, found mode {mode!r}")
    if array.size and array.min() < 0:
        raise InoError(f"{path}: class id {int(array.min())} is negative")
    bad = _first_value_above(array, N_CLASSES - 1, IGNORE_ID)
    if bad is not None:
        raise InoError(f"{path}: class id {bad} is not a VIP part class (0..{N_CLASSES - 1}, or {IGNORE_ID})")
    return array.astype(np.uint8)


def read_prediction_ids(path: str | Path) -> np.ndarray:
    """A predicted part map as (H, W) uint8 class ids 0..19.

    Grayscale PNGs are read by value, palette PNGs by index, and RGB(A) PNGs whose three channels are equal by
    that value (CRW writes such PNGs when the first frame's classes are not consecutive). Anything else is an
    error naming the file.
    """
    path = Path(path)
    array, mode = _decode(path)
    if array.ndim == 3:
        colour = array[..., :3]
        if not ((colour[..., 0] == colour[..., 1]).all() and (colour[..., 1] == colour[..., 2]).all()):
            raise InoError(
                f"{path}: an RGB prediction whose channels differ is not a class-id map; write the class ids "
                "as a grayscale PNG"
            )
        array = colour[..., 0]
    if array.ndim != 2:
        raise InoError(f"{path}: unsupported PNG mode {mode!r} for a class-id prediction")
    if array.size and array.min() < 0:
        raise InoError(f"{path}: class id {int(array.min())} is negative")
    bad = _first_value_above(array, N_CLASSES - 1)
    if bad is not None:
        raise InoError(f"{path}: predicted class id {bad} is not a VIP part class (0..{N_CLASSES - 1})")
    return array.astype(np.uint8)


def write_category_ids(path: str | Path, ids: np.ndarray) -> None:
    """Write a class-id map as an 8-bit grayscale PNG, atomically.

    Grayscale, not palette: the reference scorer decodes predictions with OpenCV, which turns a palette PNG into
    its colours and stops at the first value above 20.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"class-id map must be 2-D, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > IGNORE_ID):
        raise ValueError(f"class ids must lie in 0..255, got {ids.min()}..{ids.max()}")
    image = Image.fromarray(ids.astype(np.uint8), mode="L")
    atomic_write(path, lambda stream: image.save(stream, format="PNG"))


def parse_video_list(path: str | Path) -> list[str]:
    """Video names from a list file, in order; each bad line is one error naming the file and line.

    A line is either a video name or path (VIP's ``lists/*_videos.txt``; the last path component is the name, as
    UVC reads it) or CRW's two columns ``<image folder> <annotation folder>`` (CropMAE's ``vip_vallist.txt``),
    whose last components must agree. Blank lines are skipped.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InoError(f"{path}: video list not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InoError(f"{path}: cannot read the video list ({error})") from None
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path} line {number}"
        if len(fields) > 2:
            raise InoError(f"{where}: expected a video name or '<image folder> <annotation folder>', got {line!r}")
        parts = [Path(field.rstrip("/")).name for field in fields]
        if not all(parts):
            raise InoError(f"{where}: no video name in {line!r}")
        if len(parts) == 2 and parts[0] != parts[1]:
            raise InoError(f"{where}: the image folder {fields[0]!r} and annotation folder {fields[1]!r} differ")
        name = parts[0]
        if name in seen:
            raise InoError(f"{where}: video {name!r} is listed twice (first on line {seen[name]})")
        seen[name] = number
        names.append(name)
    if not names:
        raise InoError(f"{path}: the video list is empty")
    return names


@dataclass(frozen=True)
class VipVideo:
    """One video: every frame in order and the annotated key frames among them."""

    name: str
    frames: tuple[Path, ...]
    annotations: tuple[Path, ...]

    @property
    def annotated(self) -> tuple[str, ...]:
        """Names (stems) of the annotated frames, in order."""
        return tuple(p.stem for p in self.annotations)

    @property
    def first_annotated(self) -> str:
        """The frame whose labels start the propagation."""
        return self.annotations[0].stem

    def propagated_frames(self) -> tuple[Path, ...]:
        """The frames from the first annotated one on: those a propagation goes through."""
        start = next(i for i, p in enumerate(self.frames) if p.stem == self.first_annotated)
        return self.frames[start:]


@dataclass(frozen=True)
class VipLayout:
    """Paths of one ``VIP_Fine``-layout root."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def annotation_root(self) -> Path:
        """``Annotations/Category_ids``, or ``Category_ids`` when only the flattened layout is there."""
        nested = self.root / "Annotations" / "Category_ids"
        flat = self.root / "Category_ids"
        return flat if not nested.is_dir() and flat.is_dir() else nested

    def data_folders(self) -> list[Path]:
        """The dataset's own folders, where no output may go."""
        return [self.root / part for part in ("Images", "Annotations", "Category_ids", "lists")]

    def list_file(self, set_name: str = "val") -> Path:
        return self.root / "lists" / f"{set_name}_videos.txt"

    def videos(self, set_name: str = "val", list_file: str | Path | None = None) -> list[str]:
        """Names from ``list_file`` (default ``lists/<set>_videos.txt``), or every annotated video when the
        default list does not exist; each listed video must have its image and annotation folders."""
        path = Path(list_file) if list_file is not None else self.list_file(set_name)
        if list_file is not None or path.is_file():
            names = parse_video_list(path)
        else:
            annotations = self.annotation_root
            if not annotations.is_dir():
                raise InoError(f"{annotations}: no such folder (is {self.root} a VIP_Fine root?)")
            names = sorted((p.name for p in annotations.iterdir() if p.is_dir()), key=_natural_key)
            if not names:
                raise InoError(f"{annotations}: no video folders")
            logger.info("no %s: scoring every video with annotations (%d)", path, len(names))
        for name in names:
            for folder in (self.root / "Images" / name, self.annotation_root / name):
                if not folder.is_dir():
                    raise InoError(f"video {name!r}: no folder {folder}")
        return names

    def video(self, name: str) -> VipVideo:
        """A video's frames and annotations, checked: each annotation has its frame, of the same size."""
        image_dir = self.root / "Images" / name
        label_dir = self.annotation_root / name
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise InoError(f"video {name!r}: no folder {folder}")
        frames = sorted(
            (p for p in image_dir.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")),
            key=_frame_key,
        )
        annotations = sorted(
            (p for p in label_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
            key=_frame_key,
        )
        if not annotations:
            raise InoError(f"video {name!r}: no annotation PNGs in {label_dir}")
        by_stem = {p.stem: p for p in frames}
        for annotation in annotations:
            frame = by_stem.get(annotation.stem)
            if frame is None:
                missing = image_dir / f"{annotation.stem}.jpg"
                raise InoError(f"video {name!r}: annotation {annotation} has no frame {missing}")
            frame_size = _open_size(frame, "frame")
            label_size = _open_size(annotation, "annotation PNG")
            if frame_size != label_size:
                raise InoError(
                    f"video {name!r}: annotation {annotation} is {label_size[0]}x{label_size[1]} (WxH) but its "
                    f"frame {frame} is {frame_size[0]}x{frame_size[1]}"
                )
        return VipVideo(name, tuple(frames), tuple(annotations))
