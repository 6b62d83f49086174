"""Bar charts as inline SVG for the suite's HTML page: text, no image files, no plotting library to import.

Values are percentages on a fixed 0-100 axis, so that charts of different tasks and models read alike. A missing
value (None) is drawn as "n/a" with no bar. Colours follow :data:`ino.utils.viz.SERIES_COLOURS` (matplotlib's
first colours) for the models; quoted, published numbers are grey and labelled "(quoted)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

#: matplotlib's tab10 start, as in ino.utils.viz (not imported: that module loads OpenCV)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
QUOTED = "#9e9e9e"
FONT = 'font-family="sans-serif" font-size="12"'
SCALE, BAR, GAP, MARGIN = 420, 14, 8, 10


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _label_width(labels: Sequence[str]) -> int:
    """Room for the longest label at about 7 px per character of a 12 px sans-serif font."""
    return MARGIN + 7 * max((len(label) for label in labels), default=0) + 8


def _axis(left: int, top: int, bottom: int, unit: str) -> list[str]:
    parts = []
    for tick in range(0, 101, 20):
        x = left + SCALE * tick // 100
        parts.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{x}" y="{bottom + 14}" text-anchor="middle" {FONT}>{tick}</text>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>')
    parts.append(f'<text x="{left + SCALE // 2}" y="{bottom + 30}" text-anchor="middle" {FONT}>{escape(unit)}</text>')
    return parts


def _bar(left: int, y: int, value: float | None, fill: str, title: str) -> list[str]:
    if value is None:
        return [f'<text x="{left + 4}" y="{y + BAR - 3}" {FONT}>n/a</text>']
    width = round(SCALE * min(max(value, 0.0), 100.0) / 100)
    return [
        f'<rect x="{left}" y="{y}" width="{width}" height="{BAR - 2}" fill="{fill}"><title>{escape(title)}</title>'
        "</rect>",
        f'<text x="{left + width + 4}" y="{y + BAR - 3}" {FONT}>{value:.1f}</text>',
    ]


def _svg(width: int, height: int, title: str, parts: list[str]) -> str:
    heading = f'<text x="{width // 2}" y="16" text-anchor="middle" font-weight="bold" {FONT}>{escape(title)}</text>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">{heading}{"".join(parts)}</svg>'
    )


def headline_chart(title: str, unit: str, bars: Sequence[tuple[str, float | None, int | None]]) -> str:
    """One bar per (label, value, model index); a None index is a quoted, published number (grey)."""
    labels = [label if index is not None else f"{label} (quoted)" for label, _, index in bars]
    left, top = _label_width(labels), 28
    bottom = top + (BAR + GAP) * len(bars)
    parts = _axis(left, top, bottom, unit)
    for row, ((_, value, index), label) in enumerate(zip(bars, labels, strict=True)):
        y = top + row * (BAR + GAP) + GAP // 2
        parts.append(f'<text x="{left - 6}" y="{y + BAR - 3}" text-anchor="end" {FONT}>{escape(label)}</text>')
        parts += _bar(left, y, value, QUOTED if index is None else colour(index), f"{label}: {value}")
    return _svg(left + SCALE + 60, bottom + 40, title, parts)


def per_item_chart(title: str, unit: str, series: Mapping[str, Mapping[str, float | None]]) -> str:
    """Grouped bars: one group per sequence or video, one bar per model (``{model: {item: value}}``), with a
    legend; items are those of the first model, in its order."""
    models = list(series)
    items = list(next(iter(series.values()), {}))
    left, top = _label_width(items), 28 + 18
    group = BAR * len(models) + GAP
    bottom = top + group * len(items)
    parts = _axis(left, top, bottom, unit)
    x = left
    for index, model in enumerate(models):
        parts.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{colour(index)}"/>')
        parts.append(f'<text x="{x + 14}" y="33" {FONT}>{escape(model)}</text>')
        x += 14 + 7 * len(model) + 16
    for row, item in enumerate(items):
        y = top + row * group + GAP // 2
        parts.append(f'<text x="{left - 6}" y="{y + BAR * len(models) / 2 + 4}" text-anchor="end" {FONT}>'
                     f"{escape(item)}</text>")  # fmt: skip
        for index, model in enumerate(models):
            value = series[model].get(item)
            parts += _bar(left, y + index * BAR, value, colour(index), f"{model}, {item}: {value}")
    return _svg(max(left + SCALE + 60, x), bottom + 40, title, parts)
