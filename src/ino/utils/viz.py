"""Figures: per-sequence score bar charts, mask overlays, contact sheets and overlay videos.

Figures are plain ``matplotlib.figure.Figure`` objects, never pyplot's: they need no backend set-up, render with
Agg when saved (on any machine, with or without a display), and matplotlib is imported only when one is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ino.data.davis import davis_palette
from ino.errors import InoError
from ino.utils.atomic import atomic_write


def new_figure(**options: Any) -> Any:
    """A ``matplotlib.figure.Figure`` (``figsize=...``); draw on ``figure.subplots(...)``, then :func:`save_figure`."""
    from matplotlib.figure import Figure

    return Figure(**options)


def save_figure(figure: Any, path: str | Path, dpi: int = 100) -> Path:
    """Lay out and write a figure as PNG, atomically (creating the folder); returns the path."""
    figure.tight_layout()
    return atomic_write(path, lambda stream: figure.savefig(stream, dpi=dpi, format="png"))


def plot_sequence_scores(
    scores: Mapping[str, float] | Mapping[str, Mapping[str, float]], path: str | Path, title: str
) -> Path:
    """Horizontal bar chart of a score per sequence; a mapping of mappings draws one bar group per series.

    ``{"seq": 0.7}`` draws one series; ``{"random init": {"seq": 0.4}, "trained": {"seq": 0.7}}`` draws two,
    side by side, for before/after comparisons.
    """
    first = next(iter(scores.values()), None)
    series = dict(scores) if isinstance(first, Mapping) else {"J&F-Mean": scores}
    names = list(next(iter(series.values())).keys()) if series else []
    height = 0.8 / max(len(series), 1)
    figure = new_figure(figsize=(7, 0.35 * len(names) * max(len(series), 1) + 1.5))
    axes = figure.subplots()
    for index, (label, values) in enumerate(series.items()):
        positions = [row + index * height for row in range(len(names))]
        bars = axes.barh(positions, [values[name] for name in names], height=height, label=label)
        axes.bar_label(bars, fmt="%.3f", padding=2, fontsize=7)
    axes.set_yticks([row + height * (len(series) - 1) / 2 for row in range(len(names))], names)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.08)
    axes.set_xlabel("J&F-Mean")
    axes.set_title(title)
    if len(series) > 1:
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(series), fontsize=8)  # clear of bars
    return save_figure(figure, path, dpi=110)


def overlay_mask(rgb: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame with each object tinted in its DAVIS colour and outlined; background pixels are unchanged.

    (INO's own visualisation blends the whole frame with the palette, which darkens everything; tinting only
    the objects keeps the footage readable.)
    """
    if rgb.shape[:2] != ids.shape:
        raise InoError(f"overlay: frame is {rgb.shape[1]}x{rgb.shape[0]} but mask is {ids.shape[1]}x{ids.shape[0]}")
    colours = davis_palette()[ids]
    objects = (ids > 0)[..., None]
    blended = np.where(objects, (1 - alpha) * rgb + alpha * colours, rgb).round().astype(np.uint8)
    for object_id in np.unique(ids):
        if object_id == 0:
            continue
        contours, _ = cv2.findContours((ids == object_id).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        colour = tuple(int(c) for c in davis_palette()[object_id])
        cv2.drawContours(blended, contours, -1, colour, thickness=max(1, round(min(ids.shape) / 240)))
    return blended


def contact_sheet(
    tiles: Sequence[tuple[str, np.ndarray]], path: str | Path, columns: int = 4, width: int = 320
) -> Path:
    """A grid PNG of labelled RGB tiles (e.g. overlays of evenly spaced frames), each scaled to ``width``."""
    if not tiles:
        raise InoError(f"{path}: no frames to put on the contact sheet")
    rows = -(-len(tiles) // columns)
    columns = min(columns, len(tiles))
    aspect = tiles[0][1].shape[0] / tiles[0][1].shape[1]
    figure = new_figure(figsize=(columns * width / 100, rows * (width * aspect / 100 + 0.3)))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (label, image) in zip(axes.flat, tiles, strict=False):
        axis.imshow(image)
        axis.set_title(label, fontsize=8)
    return save_figure(figure, path)


class OverlayVideoWriter:
    """Writes RGB frames to an MP4: H.264 through PyAV when installed, else MPEG-4 through OpenCV.

    Odd frame sizes are padded by one pixel (H.264 with 4:2:0 chroma needs even sides). Use as a context
    manager; the file is complete when it closes.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._size: tuple[int, int] | None = None
        self._av: object | None = None
        self._stream: object | None = None
        self._cv2: cv2.VideoWriter | None = None

    def __enter__(self) -> OverlayVideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def _open(self, height: int, width: int) -> None:
        self._size = (height + height % 2, width + width % 2)
        try:
            import av
        except ImportError:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv2 = cv2.VideoWriter(str(self.path), fourcc, self.fps, (self._size[1], self._size[0]))
            if not self._cv2.isOpened():
                raise InoError(f"{self.path}: OpenCV cannot open an MP4 writer") from None
            return
        container = av.open(str(self.path), mode="w")
        stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        stream.height, stream.width = self._size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        self._av, self._stream = container, stream

    def write(self, rgb: np.ndarray) -> None:
        if self._size is None:
            self._open(rgb.shape[0], rgb.shape[1])
        height, width = self._size  # type: ignore[misc]
        padded = np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)), mode="edge")
        if self._cv2 is not None:
            self._cv2.write(cv2.cvtColor(padded, cv2.COLOR_RGB2BGR))
            return
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
        for packet in self._stream.encode(frame):  # type: ignore[attr-defined]
            self._av.mux(packet)  # type: ignore[attr-defined]

    def __exit__(self, *exc_info: object) -> None:
        if self._cv2 is not None:
            self._cv2.release()
        elif self._av is not None:
            for packet in self._stream.encode():  # type: ignore[attr-defined]
                self._av.mux(packet)  # type: ignore[attr-defined]
            self._av.close()  # type: ignore[attr-defined]
