"""Printed tables and files of an :class:`~ino.evaluation.scorer.Evaluation`.

The printed global table and the two CSVs use davis2017-evaluation's headers and file names, so scripts that read
the official outputs keep working; numbers carry 6 decimals. The JSON adds the protocol and per-frame values.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from ino import __version__
from ino.evaluation.scorer import GLOBAL_COLUMNS, Evaluation
from ino.utils.atomic import atomic_write_text
from ino.utils.outputs import exclusive

OBJECT_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Right-aligned columns, one leading space, as pandas' ``to_string(index=False)`` prints them."""
    rows = [list(row) for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [" ".join(f"{cell:>{width}}" for cell, width in zip(line, widths, strict=True)) for line in [header, *rows]]
    return "\n".join(" " + line for line in lines)


def _global_rows(evaluation: Evaluation) -> list[list[str]]:
    """The official global table's one row, 6 decimals."""
    results = evaluation.global_results()
    return [[f"{results[name]:.6f}" for name in GLOBAL_COLUMNS]]


def _object_rows(evaluation: Evaluation) -> list[list[str]]:
    """The official per-sequence table: one ``<sequence>_<id>`` row per object, 6 decimals."""
    return [[name, f"{row['J-Mean']:.6f}", f"{row['F-Mean']:.6f}"] for name, row in evaluation.object_rows()]


def format_tables(evaluation: Evaluation, set_name: str) -> str:
    """The official global table and per-object rows, as printed by ``ino evaluate``."""
    global_table = _table(GLOBAL_COLUMNS, _global_rows(evaluation))
    object_table = _table(OBJECT_COLUMNS, _object_rows(evaluation))
    return (
        f"--------------------------- Global results for {set_name} ---------------------------\n"
        f"{global_table}\n\n"
        f"---------------------- Per sequence results for {set_name} ----------------------\n"
        f"{object_table}"
    )


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_outputs(evaluation: Evaluation, out_dir: str | Path, set_name: str) -> dict[str, Path]:
    """Write the global CSV, per-object CSV, JSON (protocol + per-frame scores) and J&F bar chart, as the folder's
    only writer."""
    with exclusive(out_dir, "ino evaluate") as out_dir:
        return _write_outputs(evaluation, out_dir, set_name)


def _write_outputs(evaluation: Evaluation, out_dir: Path, set_name: str) -> dict[str, Path]:
    from ino.utils.viz import plot_sequence_scores

    paths = {
        "global_csv": out_dir / f"global_results-{set_name}.csv",
        "sequence_csv": out_dir / f"per-sequence_results-{set_name}.csv",
        "json": out_dir / f"evaluation-{set_name}.json",
        "plot": out_dir / f"per-sequence_jf-{set_name}.png",
    }
    atomic_write_text(paths["global_csv"], _csv_text(GLOBAL_COLUMNS, _global_rows(evaluation)))
    atomic_write_text(paths["sequence_csv"], _csv_text(OBJECT_COLUMNS, _object_rows(evaluation)))
    sequence_jf = evaluation.sequence_jf()
    document = {
        "ino_version": __version__,
        "protocol": evaluation.protocol,
        "global": evaluation.global_results(),
        "sequences": {
            scores.name: {
                "jf_mean": sequence_jf[scores.name],
                "frames": scores.frames,
                "objects": {
                    str(k + 1): {**row, "J": scores.j[:, k].tolist(), "F": scores.f[:, k].tolist()}
                    for k, row in enumerate(scores.object_statistics())
                },
            }
            for scores in evaluation.sequences
        },
    }
    atomic_write_text(paths["json"], json.dumps(document, indent=1))
    plot_sequence_scores(sequence_jf, paths["plot"], title=f"J&F-Mean per sequence ({set_name})")
    return paths
