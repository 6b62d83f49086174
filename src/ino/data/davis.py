"""DAVIS and YouTube-VOS folders: sequence lists, frame lists, and mask PNGs normalised to integer object ids.

Layouts (DAVIS-2017, and a YouTube-VOS split, which has no resolution level; docs/method.md §9)::

    <root>/JPEGImages/<resolution>/<sequence>/<frame>.jpg      <split>/JPEGImages/<video>/<frame>.jpg
    <root>/Annotations/<resolution>/<sequence>/<frame>.png     <split>/Annotations/<video>/<frame>.png
    <root>/ImageSets/2017/<set>.txt  (optional)                <split>_all_frames/JPEGImages/<video>/...

Masks come in three on-disk forms and all are read as ``uint8`` id maps (0 = background, 255 = void):
palette ("P") PNGs whose indices are the ids (DAVIS-2017), grayscale PNGs whose values are the ids, and
DAVIS-2016 binary PNGs holding only 0 and 255, which mean object 1. RGB masks drawn with the DAVIS colour map
are mapped back to ids. Masks are written as palette PNGs with the DAVIS colour map, computed here.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ino.data.videos import IMAGE_SUFFIXES
from ino.errors import InoError
from ino.utils.atomic import atomic_write

VOID_ID = 255
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR = struct.Struct(">I4sIIBBBBB")

try:  # ISA-L's inflate: the same output as zlib's, 4-5x faster (docs/evaluation.md#speed)
    from isal.isal_zlib import decompress as _inflate
    from isal.isal_zlib import error as _InflateError
except ImportError:  # platforms without its wheels
    from zlib import decompress as _inflate
    from zlib import error as _InflateError


@cache
def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map as a (256, 3) uint8 array.

    Colour i spreads the bits of i over the high bits of R, G and B (bit 0 -> R, bit 1 -> G, bit 2 -> B, then
    the next three bits one level lower): 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0), ...
    """
    ids = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.int64)
    for level in range(8):
        shift = 7 - level
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * level + channel)) & 1) << shift
    return palette.astype(np.uint8)


def _rgb_to_ids(rgb: np.ndarray, path: Path) -> np.ndarray:
    """Map DAVIS palette colours back to ids; any other colour is an error naming the file."""
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    palette = davis_palette().astype(np.int32)
    palette_packed = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(palette_packed)
    position = np.searchsorted(palette_packed[order], packed).clip(0, 255)
    ids = order[position]
    unknown = palette_packed[ids] != packed
    if unknown.any():
        y, x = np.argwhere(unknown)[0]
        colour = tuple(int(c) for c in rgb[y, x])
        raise InoError(f"{path}: RGB mask has colour {colour} at (x={x}, y={y}), not a DAVIS palette colour")
    return ids.astype(np.uint8)


def _undo_sub_filter(raw: np.ndarray) -> np.ndarray:
    """Pixels of scanlines that all use PNG's Sub filter: each row's running sum of its bytes, mod 256.

    ``raw`` is (H, 1 + W): each row's filter byte, then its filtered bytes. In an id mask a row is a few runs of
    one id, so the filtered bytes are zero except where the id changes: the running sums are taken over those
    bytes only (restarting on each row) and spread over the runs, straight into the (H, W) result.
    """
    height, width = raw.shape[0], raw.shape[1] - 1
    found = cv2.findNonZero(raw)  # (x, y) in row-major order, the filter bytes (x = 0) included; None if none
    xy = np.zeros((0, 2), np.int64) if found is None else found.reshape(-1, 2).astype(np.int64)
    xy = xy[xy[:, 0] > 0]
    rows = xy[:, 1]
    sums = np.cumsum(raw[rows, xy[:, 0]], dtype=np.uint8)
    first = np.searchsorted(rows, rows)  # index of the first change of each change's row
    sums -= np.where(first > 0, sums[first - 1], 0).astype(np.uint8)
    positions = np.concatenate([np.arange(height, dtype=np.int64) * width, rows * width + xy[:, 0] - 1])
    values = np.concatenate([np.zeros(height, np.uint8), sums])
    order = np.argsort(positions, kind="stable")  # a change in column 0 comes after its row's start
    lengths = np.diff(positions[order], append=height * width)
    return np.repeat(values[order], lengths).reshape(height, width)


def _decode_plain_png(data: bytes) -> tuple[np.ndarray, str] | None:
    """(ids, "P" or "L") of an 8-bit, non-interlaced palette or grayscale PNG whose rows all use the None or all
    the Sub filter, as Pillow and OpenCV write masks; None for anything else, which Pillow then reads.

    Pillow's decoder spends most of its time in zlib and (for Sub) in its per-row loops: here the stream is
    inflated by ISA-L when installed, and the filters are undone on whole arrays. The chunks' CRCs are checked;
    a file that is damaged or unusual in any way goes to Pillow, which reads it or reports the problem.
    """
    if len(data) < 8 + _IHDR.size + 4 or not data.startswith(PNG_SIGNATURE):
        return None
    length, kind, width, height, depth, colour, compression, filtering, interlace = _IHDR.unpack_from(data, 8)
    if kind != b"IHDR" or length != 13 or (depth, compression, filtering, interlace) != (8, 0, 0, 0):
        return None
    if colour not in (0, 3) or width == 0 or height == 0:
        return None
    position, chunks, seen_palette = 8, [], False
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        end = position + 12 + length
        if end > len(data):
            return None
        kind = data[position + 4 : position + 8]
        if kind in (b"IHDR", b"IDAT") and zlib.crc32(data[position + 4 : end - 4]) != int.from_bytes(
            data[end - 4 : end], "big"
        ):
            return None
        if kind == b"IDAT":
            chunks.append(data[position + 8 : end - 4])
        seen_palette |= kind == b"PLTE"
        if kind == b"IEND":
            break
        position = end
    if not chunks or (colour == 3 and not seen_palette):
        return None
    try:
        inflated = _inflate(b"".join(chunks))
    except (_InflateError, zlib.error):
        return None
    if len(inflated) != height * (width + 1):
        return None
    raw = np.frombuffer(inflated, np.uint8).reshape(height, width + 1)
    filters = raw[:, 0]
    if not filters.any():
        ids = np.ascontiguousarray(raw[:, 1:])
    elif (filters == 1).all():
        ids = _undo_sub_filter(raw)
    else:
        return None
    return ids, "P" if colour == 3 else "L"


def _read_with_pillow(path: Path) -> tuple[np.ndarray, str]:
    """Any PNG Pillow reads, as (array, mode) with RGBA reduced to RGB and LA to L."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "RGBA":
                image = image.convert("RGB")
                mode = "RGB"
            elif mode == "LA":
                image = image.getchannel("L")
                mode = "L"
            return np.array(image), mode
    except FileNotFoundError:
        raise InoError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InoError(f"{path}: cannot read image ({error})") from None


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask PNG as an (H, W) uint8 id map; see the module docstring for the accepted forms.

    The common forms (8-bit palette or grayscale, as Pillow and OpenCV write them) are decoded by
    :func:`_decode_plain_png`, every other PNG by Pillow; both give the same ids (tests/data/test_davis.py).
    """
    path = Path(path)
    try:
        decoded = _decode_plain_png(path.read_bytes())
    except FileNotFoundError:
        raise InoError(f"{path}: file not found") from None
    except OSError:
        decoded = None  # e.g. a folder: Pillow names the problem
    array, mode = decoded if decoded is not None else _read_with_pillow(path)
    if mode == "P":
        return np.ascontiguousarray(array, dtype=np.uint8)
    if mode == "1":
        return array.astype(np.uint8)
    if mode == "RGB":
        return _rgb_to_ids(array, path)
    if mode in ("L", "I", "I;16", "I;16B", "I;16L"):
        if array.dtype != np.uint8:
            if array.min() < 0 or array.max() > 255:
                raise InoError(f"{path}: mask ids must lie in 0..255, found {array.min()}..{array.max()}")
            array = array.astype(np.uint8)
        # DAVIS-2016 binary: 0 and 255 only (one max() pass settles the common case of no 255 at all)
        if array.max(initial=0) == VOID_ID and not np.any((array > 0) & (array < VOID_ID)):
            return (array == VOID_ID).astype(np.uint8)
        return np.ascontiguousarray(array)
    raise InoError(f"{path}: unsupported PNG mode {mode!r} for a mask (expected palette, grayscale or RGB)")


def object_ids(ids: np.ndarray, what: str = "mask") -> np.ndarray:
    """A 2-D uint8 id map of objects: void (255) becomes background (0), as the semi-supervised protocol reads GT.

    ``what`` names the mask in the message when ``ids`` is not a 2-D map of integers in 0..255.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise InoError(f"{what}: expected a 2-D integer id map, got shape {ids.shape} dtype {ids.dtype}")
    if ids.dtype != np.uint8 and ids.size and (ids.min() < 0 or ids.max() > VOID_ID):
        raise InoError(f"{what}: object ids must lie in 0..{VOID_ID}, got {ids.min()}..{ids.max()}")
    if ids.size == 0 or ids.max() < VOID_ID:  # no void: one pass, no copy of a uint8 map
        return ids.astype(np.uint8, copy=False)
    return np.where(ids == VOID_ID, 0, ids).astype(np.uint8, copy=False)


def read_object_ids(path: str | Path) -> np.ndarray:
    """:func:`read_mask` with void read as background: the objects of a ground-truth or first-frame mask."""
    return object_ids(read_mask(path), str(path))


def read_frame(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file, decoded with OpenCV as INO's inference does (docs/method.md §7.2).

    A JPEG without its end-of-image marker (a truncated copy) is refused: OpenCV would decode it silently, greying
    out the part that is missing.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise InoError(f"{path}: cannot read the frame ({error.strerror or error})") from None
    if Path(path).suffix.lower() in (".jpg", ".jpeg") and b"\xff\xd9" not in data[-64:].tobytes():
        raise InoError(f"{path}: the JPEG is truncated (no end-of-image marker)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InoError(f"{path}: cannot read the frame (empty or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_mask(path: str | Path, ids: np.ndarray) -> None:
    """Write an id map as a DAVIS palette PNG, atomically (a reader never sees a half-written file)."""
    path = Path(path)
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f"mask ids must lie in 0..255, got {ids.min()}..{ids.max()}")
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(davis_palette().ravel().tolist())
    atomic_write(path, lambda stream: image.save(stream, format="PNG"))


@dataclass(frozen=True)
class DavisLayout:
    """Paths of one DAVIS-layout root at one resolution (``"480p"``, ``"Full-Resolution"``, ...)."""

    root: Path
    resolution: str = "480p"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def data_folders(self) -> list[Path]:
        """The dataset's own folders, where no output may go."""
        return [self.root / part for part in ("JPEGImages", "Annotations", "ImageSets")]

    def image_dir(self, sequence: str) -> Path:
        return self.root / "JPEGImages" / self.resolution / sequence

    def annotation_dir(self, sequence: str) -> Path:
        return self.root / "Annotations" / self.resolution / sequence

    def sequences(self, set_name: str = "val") -> list[str]:
        """Sequence names from ``ImageSets/2017/<set>.txt``, or every annotated folder when there is no list."""
        sets_dir = self.root / "ImageSets" / "2017"
        set_file = sets_dir / f"{set_name}.txt"
        if set_file.is_file():
            names = [line.strip() for line in set_file.read_text().splitlines() if line.strip()]
            if not names:
                raise InoError(f"{set_file}: sequence list is empty")
        elif sets_dir.is_dir() and any(sets_dir.glob("*.txt")):
            available = ", ".join(sorted(p.stem for p in sets_dir.glob("*.txt")))
            raise InoError(f"{set_file}: unknown set {set_name!r} (available: {available})")
        else:
            annotations = self.root / "Annotations" / self.resolution
            if not annotations.is_dir():
                raise InoError(f"{annotations}: no such folder (is {self.root} a DAVIS-layout root?)")
            names = sorted(p.name for p in annotations.iterdir() if p.is_dir())
            if not names:
                raise InoError(f"{annotations}: no sequence folders")
        for name in names:
            if not self.annotation_dir(name).is_dir():
                raise InoError(f"sequence {name!r}: no annotation folder {self.annotation_dir(name)}")
        return names

    def annotation_frames(self, sequence: str) -> list[str]:
        """Sorted frame ids (file stems) of a sequence's annotation PNGs."""
        folder = self.annotation_dir(sequence)
        frames = sorted(p.stem for p in folder.glob("*.png"))
        if not frames:
            raise InoError(f"sequence {sequence!r}: no annotation PNGs in {folder}")
        return frames

    def image_frames(self, sequence: str) -> list[Path]:
        """Sorted JPEG frame paths of a sequence."""
        folder = self.image_dir(sequence)
        frames = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.jpeg"))
        if not frames:
            raise InoError(f"sequence {sequence!r}: no JPEG frames in {folder}")
        return sorted(frames)


def _existing(folder: Path) -> Path:
    if not folder.is_dir():
        raise InoError(f"{folder}: no such folder")
    return folder


def _images(folder: Path) -> list[Path]:
    """The image files of a frame folder, sorted by name (the frame order)."""
    return sorted(p for p in _existing(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class YtvosLayout:
    """A YouTube-VOS split (``valid/``: every 5th frame and first-appearance masks), with its every-frame twin.

    ``all_frames`` (``valid_all_frames/``) holds every frame; without it the split's own frames are propagated.
    """

    root: Path
    all_frames: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.all_frames is not None:
            object.__setattr__(self, "all_frames", Path(self.all_frames))

    def data_folders(self) -> list[Path]:
        """The dataset's own folders, where no output may go."""
        frames = [self.all_frames / "JPEGImages"] if self.all_frames else []
        return [self.root / "Annotations", self.root / "JPEGImages", *frames]

    def videos(self) -> list[str]:
        """Every video with an annotation folder, sorted."""
        return sorted(p.name for p in _existing(self.root / "Annotations").iterdir() if p.is_dir())

    def frames(self, video: str) -> list[Path]:
        """The frames to propagate through, in order."""
        return _images((self.all_frames or self.root) / "JPEGImages" / video)

    def output_frames(self, video: str) -> set[str]:
        """Names (stems) of the frames whose masks the evaluation server expects."""
        return {p.stem for p in _images(self.root / "JPEGImages" / video)}

    def annotations(self, video: str) -> list[Path]:
        """The first-appearance masks of a video, in frame order."""
        return sorted((self.root / "Annotations" / video).glob("*.png"))
