"""The suite's table: ``<out>/suite.json`` (everything), ``suite.md`` and ``suite.html`` (rendered from the JSON).

The JSON document is built from the task folders' records, so a resumed suite tabulates results made in earlier
runs exactly as they were recorded; the Markdown and the HTML page are rendered from the document alone
(:func:`render_markdown`, :func:`render_html`), so either can be rebuilt from ``suite.json``. Both are laid out
from one list of blocks (headings, paragraphs, tables, charts) so that they say the same things. The HTML page
is self-contained: inline CSS and SVG charts, no script, no external file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from html import escape
from pathlib import Path

from ino import __version__
from ino.suite.charts import headline_chart, per_item_chart
from ino.suite.published import LEFT_OUT, context_rows
from ino.suite.record import SCORED
from ino.suite.tasks import get_task
from ino.utils.atomic import atomic_write_text

FORMAT = "ino-suite-table"
Block = tuple  # ("h", level, text) | ("p", text) | ("table", header, rows) | ("chart", svg) | ("list", items)
STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}"
    "p.warn{background:#fff4e0;border-left:4px solid #f0a020;padding:6px 10px}"
)


def build_document(cells: list[dict[str, object]], machine: Mapping[str, object], command: str) -> dict[str, object]:
    """The table as data, from each model x task cell (``model``, ``checkpoint``, ``task``, ``folder``,
    ``record``: the task folder's record or None)."""
    models: dict[str, dict[str, object]] = {}
    tasks: list[str] = []
    rows = []
    for cell in cells:
        record = cell["record"] or {}
        model = models.setdefault(str(cell["model"]), {"name": cell["model"], "checkpoint": cell["checkpoint"]})
        if record.get("backbone"):
            model.setdefault("backbone", record["backbone"])
        if cell["task"] not in tasks:
            tasks.append(str(cell["task"]))
        settings = record.get("settings", {})
        scores = record.get("scores", {})
        row = {
            "model": cell["model"],
            "task": cell["task"],
            "folder": cell["folder"],
            "status": record.get("status", "not started"),
            "preset": settings.get("propagation", {}).get("preset"),
            "max_frames": settings.get("max_frames"),
            **{key: scores.get(key) for key in ("metrics", "per_item", "server", "files")},
            **{key: record.get(key) for key in ("card", "backbone", "scored_at", "host", "ranks", "seconds")},
            "config": settings.get("propagation", {}).get("config"),
        }
        rows.append(row)
    done = sum(row["status"] == SCORED for row in rows)
    return {
        "format": FORMAT,
        "version": 1,
        "ino_version": __version__,
        "generated": dict(machine),
        "command": command,
        "complete": done == len(rows),
        "scored": done,
        "cells": len(rows),
        "quick_check": next((row["max_frames"] for row in rows if row["max_frames"]), None),
        "models": list(models.values()),
        "tasks": [
            {"name": t, "title": get_task(t).title, "metrics": list(get_task(t).metrics), "item": get_task(t).item}
            for t in tasks
        ],
        "rows": rows,
        "context": [row.to_json() for t in tasks for row in context_rows(t)],
        "left_out": list(LEFT_OUT),
    }


def _number(value: object, decimals: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):.{decimals}f}"  # type: ignore[arg-type]


def _ran(row: Mapping[str, object]) -> str:
    if row["status"] != SCORED:
        return f"{row['status']}: rerun the same command to finish"
    seconds = row.get("seconds") or {}
    return f"{row['scored_at']} on {row['host']}, {row['ranks']} rank(s), propagation {seconds.get('propagate')} s"


def _cell(row: Mapping[str, object], metric: str | None) -> str:
    """An overview cell: the headline number, the server archive, or the status."""
    if row["status"] != SCORED:
        return str(row["status"])
    if metric is None:
        return f"server: {row['folder']}/{(row.get('server') or {}).get('file')}"
    return _number((row.get("metrics") or {}).get(metric))


def _source(context: Mapping[str, object]) -> str:
    """A context row's footnote: where the numbers were read and the protocol they were measured under."""
    return f"{context['source']} ({context['url']}). Protocol: {context['protocol']}."


def _quoted_label(context: Mapping[str, object]) -> str:
    return f"quoted: {context['method']} {context['backbone']} ({context['trained_on']})"


def _blocks(document: Mapping[str, object], charts: bool, overview_only: bool = False) -> Iterator[Block]:
    """The report, in order; ``charts`` adds the SVG charts (HTML only); ``overview_only`` stops after the
    overview table (what the command prints)."""
    generated = document["generated"]
    tasks, rows, context = document["tasks"], document["rows"], document["context"]
    yield ("h", 1, "Label-propagation suite")
    yield ("p", f"Generated {generated['date']} on {generated['host']} ({generated['platform']}; Python "
                f"{generated['python']}, torch {generated['torch']}; device {generated['device']}, "
                f"{generated['ranks']} rank(s)) by ino {document['ino_version']}.")  # fmt: skip
    yield ("p", f"Command: `{document['command']}`")
    if document["quick_check"]:
        yield ("warn", f"Quick check: only the first {document['quick_check']} frames of each sequence were "
                       "propagated and scored. These are not benchmark numbers.")  # fmt: skip
    if not document["complete"]:
        yield ("warn", f"Incomplete: {document['scored']} of {document['cells']} model x task results are scored; "
                       "rerun the same command to finish.")  # fmt: skip
    yield ("p", "All numbers are percentages. Rows marked 'quoted' are published numbers, quoted from their "
                "source with the protocol they were measured under (listed under each task); they were not "
                "measured here, and their protocols differ from these runs'.")  # fmt: skip
    yield ("h", 2, "Overview")
    header = ["model"] + [f"{t['title']} {t['metrics'][0] if t['metrics'] else '(server)'}" for t in tasks]
    table = [[m["name"]] + [_cell(_row(rows, m["name"], t["name"]), (t["metrics"] or [None])[0]) for t in tasks]
             for m in document["models"]]  # fmt: skip
    yield ("table", header, table)
    if overview_only:
        return
    for task in tasks:
        yield from _task_blocks(document, task, [r for r in rows if r["task"] == task["name"]],
                                [c for c in context if c["task"] == task["name"]], charts)  # fmt: skip
    yield ("h", 2, "Published numbers left out")
    yield ("list", list(document["left_out"]))


def _row(rows: list[Mapping[str, object]], model: str, task: str) -> Mapping[str, object]:
    return next(r for r in rows if r["model"] == model and r["task"] == task)


def _task_blocks(document: Mapping, task: Mapping, rows: list, context: list, charts: bool) -> Iterator[Block]:
    metrics = task["metrics"]
    notes = {source: index for index, source in enumerate(dict.fromkeys(map(_source, context)), 1)}
    yield ("h", 2, task["title"])
    if metrics:
        header = ["model", *metrics, "preset", "changed from the preset", "run"]
        table = [[r["model"], *(_cell(r, m) for m in metrics), str(r["preset"]),
                  (r.get("card") or {}).get("changed from the preset", "n/a"), _ran(r)] for r in rows]  # fmt: skip
        for c in context:
            values = [_number(c["metrics"].get(m), c["decimals"]) if m in c["metrics"] else "-" for m in metrics]
            table.append([_quoted_label(c), *values, f"[{notes[_source(c)]}]", "-", "published"])
        yield ("table", header, table)
    else:
        header = ["model", "archive for the evaluation server", "bytes", "SHA-256", "videos", "run"]
        table = []
        for r in rows:
            server = r.get("server") or {}
            table.append([r["model"], f"{r['folder']}/{server.get('file', '-')}", str(server.get("bytes", "-")),
                          str(server.get("sha256", "-")), str(server.get("videos", "-")), _ran(r)])  # fmt: skip
        yield ("table", header, table)
        yield ("p", "No local score: upload the archive to the YouTube-VOS 2018 server (CodaLab).")
    for source, index in notes.items():
        yield ("p", f"[{index}] {source}")
    scored = [r for r in rows if r["status"] == SCORED]
    if metrics and scored:
        item = f"per {task['item']}"
        series = {r["model"]: r["per_item"] or {} for r in scored}
        if charts:
            quick = " (quick check)" if document["quick_check"] else ""
            bars = [(r["model"], r["metrics"].get(metrics[0]), i) for i, r in enumerate(scored)]
            bars += [(f"{c['method']} {c['backbone']} ({c['trained_on']})", c["metrics"][metrics[0]], None)
                     for c in context if metrics[0] in c["metrics"]]  # fmt: skip
            title = f"{task['title']}: {metrics[0]}"
            yield ("chart", headline_chart(title + quick, f"{metrics[0]} (%)", bars))
            yield ("chart", per_item_chart(f"{title} {item}{quick}", f"{metrics[0]} (%)", series))
        items = list(next(iter(series.values())))
        yield ("h", 3, f"{metrics[0]} {item}")
        yield ("table", [task["item"], *series], [[i, *(_number(s.get(i)) for s in series.values())] for i in items])
    yield from _card_blocks(scored)


def _card_blocks(scored: list[Mapping[str, object]]) -> Iterator[Block]:
    """The protocol card: an entry shared by every model once, an entry that differs as ``model: value`` each."""
    if not scored:
        return
    cards = {r["model"]: r["card"] for r in scored}
    rows = []
    for key in dict.fromkeys(k for card in cards.values() for k in card):
        values = {model: str(card.get(key, "n/a")) for model, card in cards.items()}
        shared = len(set(values.values())) == 1
        rows.append([key, next(iter(values.values())) if shared else "; ".join(f"{m}: {v}" for m, v in values.items())])
    yield ("h", 3, "Protocol card")
    yield ("table", ["", ", ".join(cards)], rows)


def _markdown_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(document: Mapping[str, object], overview_only: bool = False) -> str:
    """``suite.md`` from the document (or its head and overview table only)."""
    lines: list[str] = []
    for block in _blocks(document, charts=False, overview_only=overview_only):
        kind = block[0]
        if kind == "h":
            lines.append(f"{'#' * block[1]} {block[2]}")
        elif kind == "p":
            lines.append(block[1])
        elif kind == "warn":
            lines.append(f"**{block[1]}**")
        elif kind == "list":
            lines.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            table = ["| " + " | ".join(_markdown_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
            table += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
            lines.append("\n".join(table))
    return "\n\n".join(lines) + "\n"


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def render_html(document: Mapping[str, object]) -> str:
    """``suite.html`` from the document: one self-contained page."""
    body: list[str] = []
    for block in _blocks(document, charts=True):
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{escape(block[2])}</h{block[1]}>")
        elif kind in ("p", "warn"):
            opening = '<p class="warn">' if kind == "warn" else "<p>"
            body.append(f"{opening}{_inline(block[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "chart":
            body.append(f"<figure>{block[1]}</figure>")
        elif kind == "table":
            head = "".join(f"<th>{escape(str(h))}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Label-propagation suite</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_table(out: str | Path, document: Mapping[str, object]) -> dict[str, Path]:
    """Write ``suite.json``, ``suite.md`` and ``suite.html`` into ``out``, each temp-then-rename."""
    out = Path(out)
    paths = {"json": out / "suite.json", "markdown": out / "suite.md", "html": out / "suite.html"}
    atomic_write_text(paths["json"], json.dumps(document, indent=1) + "\n")
    atomic_write_text(paths["markdown"], render_markdown(document))
    atomic_write_text(paths["html"], render_html(document))
    return paths
