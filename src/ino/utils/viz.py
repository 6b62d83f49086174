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


#: matplotlib's first colours (tab10), so PIL-drawn and matplotlib-drawn figures of a report match
SERIES_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))


def plot_sequence_scores(
    scores: Mapping[str, float] | Mapping[str, Mapping[str, float]], path: str | Path, title: str
) -> Path:
    """Horizontal bar chart of J&F-Mean per sequence in [0, 1]; a mapping of mappings draws one bar per series.

    ``{"seq": 0.7}`` draws one series; ``{"random init": {"seq": 0.4}, "trained": {"seq": 0.7}}`` draws two, side
    by side, with a legend. Drawn with PIL rather than matplotlib: ``ino evaluate`` writes one every run, and
    importing matplotlib alone took a third of a whole dev-set evaluation.
    """
    from PIL import Image, ImageDraw, ImageFont

    first = next(iter(scores.values()), None)
    series = dict(scores) if isinstance(first, Mapping) else {"J&F-Mean": scores}
    names = list(next(iter(series.values())).keys()) if series else []
    font, small = ImageFont.load_default(size=13), ImageFont.load_default(size=11)
    bar, gap, margin, scale = 14, 10, 12, 520
    left = margin + max((int(font.getlength(name)) for name in names), default=0) + 8
    top = margin + 26
    group = bar * len(series) + gap
    legend = 22 if len(series) > 1 else 0
    width, height = left + scale + 60, top + group * len(names) + 36 + legend
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, margin), title, fill="black", font=font, anchor="mt")
    bottom = top + group * len(names)
    for tick in range(6):
        x = left + round(scale * tick / 5)
        draw.line([(x, top), (x, bottom)], fill=(225, 225, 225))
        draw.text((x, bottom + 4), f"{tick / 5:.1f}", fill="black", font=small, anchor="mt")
    draw.text((left + scale // 2, bottom + 20), "J&F-Mean", fill="black", font=small, anchor="mt")
    for row, name in enumerate(names):
        y = top + row * group + gap // 2
        draw.text((left - 6, y + bar * len(series) / 2), name, fill="black", font=font, anchor="rm")
        for index, values in enumerate(series.values()):
            value = min(max(float(values[name]), 0.0), 1.0)
            y0 = y + index * bar
            draw.rectangle([left, y0, left + round(scale * value), y0 + bar - 2], fill=SERIES_COLOURS[index % 4])
            draw.text((left + round(scale * value) + 3, y0 + bar / 2 - 1), f"{values[name]:.3f}", fill="black",
                      font=small, anchor="lm")  # fmt: skip
    draw.line([(left, top), (left, bottom)], fill="black")
    x = margin
    for index, label in enumerate(series if legend else ()):
        y = height - legend + 4
        draw.rectangle([x, y, x + 12, y + 12], fill=SERIES_COLOURS[index % 4])
        draw.text((x + 16, y + 6), label, fill="black", font=small, anchor="lm")
        x += 28 + int(small.getlength(label))
    return atomic_write(path, lambda stream: image.save(stream, format="PNG"))


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
