"""Figures: per-sequence score bar charts (and, later, overlays and loss curves).

matplotlib is imported inside the functions with the non-interactive Agg backend, so importing ``ino`` stays
fast and works on machines without a display.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def plot_sequence_scores(
    scores: Mapping[str, float] | Mapping[str, Mapping[str, float]], path: str | Path, title: str
) -> Path:
    """Horizontal bar chart of a score per sequence; a mapping of mappings draws one bar group per series.

    ``{"seq": 0.7}`` draws one series; ``{"random init": {"seq": 0.4}, "trained": {"seq": 0.7}}`` draws two,
    side by side, for before/after comparisons.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(scores.values()), None)
    series = dict(scores) if isinstance(first, Mapping) else {"J&F-Mean": scores}
    names = list(next(iter(series.values())).keys()) if series else []
    height = 0.8 / max(len(series), 1)
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(names) * max(len(series), 1) + 1.5))
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
        axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
