"""Printed tables and files of a :class:`~ino.evaluation.vip.VipEvaluation`: JSON (protocol, confusion matrix,
per-class and per-video numbers) and the same as a markdown report. Numbers carry 6 decimals; a class in neither
the ground truth nor the predictions has no IoU ("n/a", JSON null) and is not averaged."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ino import __version__
from ino.data.vip import CLASS_NAMES
from ino.evaluation.vip import VipEvaluation
from ino.utils.atomic import atomic_write_text
from ino.utils.outputs import exclusive

GLOBAL_COLUMNS = ("mIoU", "pixel_accuracy", "mean_class_accuracy")


def _number(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.6f}"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Right-aligned columns with one leading space (the DAVIS tables' look)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        " " + " ".join(f"{cell:>{width}}" for cell, width in zip(line, widths, strict=True)) for line in [header, *rows]
    )


def _class_rows(evaluation: VipEvaluation) -> list[list[str]]:
    matrix = evaluation.confusion
    return [
        [str(c), CLASS_NAMES[c], _number(iou), str(int(matrix[c].sum())), str(int(matrix[:, c].sum()))]
        for c, iou in enumerate(evaluation.class_iou())
    ]


def _video_rows(evaluation: VipEvaluation) -> list[list[str]]:
    return [[v.name, str(len(v.frames)), _number(v.miou)] for v in evaluation.videos]


CLASS_HEADER = ["id", "class", "IoU", "gt_pixels", "predicted_pixels"]
VIDEO_HEADER = ["video", "frames", "mIoU"]


def format_vip_tables(evaluation: VipEvaluation, set_name: str) -> str:
    """The global line, IoU per class and mIoU per video, as ``ino evaluate --vip-root`` prints them."""
    results = evaluation.global_results()
    return (
        f"--------------------- VIP part propagation, global results for {set_name} ---------------------\n"
        f"{_table(list(GLOBAL_COLUMNS), [[_number(results[c]) for c in GLOBAL_COLUMNS]])}\n\n"
        "--------------------------- IoU per class (n/a: in neither truth nor prediction) ---------------------------\n"
        f"{_table(CLASS_HEADER, _class_rows(evaluation))}\n\n"
        "------------------------------------ mIoU per video ------------------------------------\n"
        f"{_table(VIDEO_HEADER, _video_rows(evaluation))}"
    )


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _markdown(evaluation: VipEvaluation, set_name: str) -> str:
    results = evaluation.global_results()
    protocol = "\n".join(f"- {key}: {value}" for key, value in evaluation.protocol.items() if key != "videos")
    return (
        f"# VIP part propagation: {set_name}\n\n"
        f"{_markdown_table(list(GLOBAL_COLUMNS), [[_number(results[c]) for c in GLOBAL_COLUMNS]])}\n\n"
        "## IoU per class\n\nn/a: the class is in neither the ground truth nor the predictions; it is not "
        "averaged.\n\n"
        f"{_markdown_table(CLASS_HEADER, _class_rows(evaluation))}\n\n"
        "## mIoU per video\n\nEach from the video's own confusion matrix; the global mIoU is not their mean.\n\n"
        f"{_markdown_table(VIDEO_HEADER, _video_rows(evaluation))}\n\n"
        f"## Protocol\n\n{protocol}\n"
    )


def write_vip_outputs(evaluation: VipEvaluation, out_dir: str | Path, set_name: str) -> dict[str, Path]:
    """Write ``vip_results-<set>.json`` and ``.md`` atomically, as the folder's only writer."""
    with exclusive(out_dir, "ino evaluate") as folder:
        paths = {"json": folder / f"vip_results-{set_name}.json", "markdown": folder / f"vip_results-{set_name}.md"}
        matrix = evaluation.confusion
        document = {
            "ino_version": __version__,
            "protocol": evaluation.protocol,
            "global": {key: _json_number(value) for key, value in evaluation.global_results().items()},
            "classes": {
                str(c): {
                    "name": CLASS_NAMES[c],
                    "iou": iou,
                    "gt_pixels": int(matrix[c].sum()),
                    "predicted_pixels": int(matrix[:, c].sum()),
                }
                for c, iou in enumerate(evaluation.class_iou())
            },
            "confusion": matrix.tolist(),
            "videos": {
                v.name: {
                    "frames": v.frames,
                    "mIoU": _json_number(v.miou),
                    "confusion": v.confusion.tolist(),
                }
                for v in evaluation.videos
            },
        }
        atomic_write_text(paths["json"], json.dumps(document, indent=1))
        atomic_write_text(paths["markdown"], _markdown(evaluation, set_name))
        return paths
