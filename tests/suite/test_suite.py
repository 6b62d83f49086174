"""``ino suite`` end to end on tiny synthetic benchmarks: the table (one row per model and task, the scorers' own
numbers), its three files, resume task by task and sequence by sequence, refusals, quick checks."""

from __future__ import annotations

import hashlib
import json
import shutil
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from ino.cli import main
from ino.evaluation.scorer import evaluate
from ino.suite.published import LEFT_OUT
from ino.suite.record import RECORD_NAME
from ino.suite.report import render_html, render_markdown

MODELS = ("alpha", "beta")


@pytest.fixture(scope="module")
def table(
    davis: Path, ytvos: tuple[Path, Path], two_models: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Two models on DAVIS and YouTube-VOS, one suite run; returns its --out."""
    out = tmp_path_factory.mktemp("table") / "out"
    valid, all_frames = ytvos
    roots = ["--davis-root", str(davis), "--ytvos-root", str(valid), "--all-frames", str(all_frames)]
    assert main(["suite", *two_models, *roots, "--out", str(out), "--quiet"]) == 0
    return out


def document(out: Path) -> dict:
    return json.loads((out / "suite.json").read_text())


def stamps(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_row_per_model_and_task_with_the_scorers_numbers(table: Path, davis: Path) -> None:
    doc = document(table)
    assert [(r["model"], r["task"]) for r in doc["rows"]] == [(m, t) for m in MODELS for t in ("davis", "ytvos")]
    assert doc["complete"] and {r["status"] for r in doc["rows"]} == {"scored"} and doc["quick_check"] is None
    rows = {(r["model"], r["task"]): r for r in doc["rows"]}
    for model in MODELS:
        evaluation = evaluate(davis, table / model / "davis")  # the task folder is an ordinary results folder
        scores = evaluation.global_results()
        metrics = rows[model, "davis"]["metrics"]
        assert metrics == {key: pytest.approx(100 * scores[key]) for key in ("J&F-Mean", "J-Mean", "F-Mean")}
        assert rows[model, "davis"]["per_item"] == pytest.approx(
            {k: 100 * v for k, v in evaluation.sequence_jf().items()}
        )
        server = rows[model, "ytvos"]["server"]
        archive = table / model / "ytvos" / "Annotations.zip"
        assert server["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest() and server["videos"] == 1
        assert rows[model, "ytvos"]["metrics"] == {}
    assert rows["alpha", "davis"]["metrics"] != rows["beta", "davis"]["metrics"]  # two models, not one twice
    markdown = (table / "suite.md").read_text()
    jf = rows["beta", "davis"]["metrics"]["J&F-Mean"]
    assert f"| beta | {jf:.2f} | server: beta/ytvos/Annotations.zip |" in markdown
    assert "| quoted: DINO ViT-S/8 (ImageNet) | 69.9 | 66.6 | 73.1 |" in markdown  # published rows, marked
    assert "Caron et al., Emerging Properties in Self-Supervised Vision Transformers (ICCV 2021), Table 5" in markdown
    assert all(f"- {item}" in markdown for item in LEFT_OUT)  # and what was left out, with why
    assert "changed from the preset | short_side: 480 -> 64" in markdown  # the card says what was not the preset
    assert "backbone | alpha: vit_tiny/16 from random(seed=0); beta: vit_tiny/16 from random(seed=1) |" in markdown


class _Page(HTMLParser):
    """Checks that every element closes in order and collects what could reach outside the page."""

    VOID: ClassVar[set[str]] = {"meta", "br", "hr", "img", "input", "link", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.external += [f"{tag} {name}={value}" for name, value in attrs if name in ("src", "href")]
        if tag in ("script", "link", "iframe", "img", "object"):
            self.external.append(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def test_html_is_well_formed_and_self_contained(table: Path) -> None:
    html = (table / "suite.html").read_text()
    page = _Page()
    page.feed(html)
    page.close()
    assert page.open == [] and page.external == []
    assert page.tags.count("svg") == 2  # DAVIS: headline and per-sequence charts; YouTube-VOS has no score
    for svg in html.split("<svg")[1:]:
        ElementTree.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # each chart is valid XML
    assert "quoted" in html and "Protocol card" in html and "Annotations.zip" in html


def test_json_round_trips(table: Path) -> None:
    """The Markdown and the HTML page are rebuilt, byte for byte, from suite.json alone."""
    text = (table / "suite.json").read_text()
    doc = json.loads(text)
    assert json.dumps(doc, indent=1) + "\n" == text
    assert render_markdown(doc) == (table / "suite.md").read_text()
    assert render_html(doc) == (table / "suite.html").read_text()


def test_resume_skips_scored_tasks_redoes_a_lost_sequence_and_refuses_other_settings(
    table: Path, davis: Path, ytvos: tuple[Path, Path], two_models: list[str], suite
) -> None:
    valid, all_frames = ytvos
    args = [*two_models, "--davis-root", str(davis), "--ytvos-root", str(valid), "--all-frames", str(all_frames)]
    before, rows = stamps(table / "alpha"), document(table)["rows"]
    code, _, err = suite(*args, "--out", str(table))
    assert code == 0 and err.count("already scored with these settings, skipped") == 4
    assert stamps(table / "alpha") == before and document(table)["rows"] == rows  # nothing redone
    # an interrupted task: recorded as started, one sequence lost; the rerun redoes that sequence only
    task = table / "beta" / "davis"
    record = json.loads((task / RECORD_NAME).read_text())
    (task / RECORD_NAME).write_text(json.dumps({k: record[k] for k in ("settings", "started_at", "ino_version")}
                                               | {"status": "started"}))  # fmt: skip
    kept, lost = sorted(p.name for p in task.iterdir() if p.name.startswith("synth-"))
    masks = {p.name: p.read_bytes() for p in (task / lost).iterdir()}
    shutil.rmtree(task / lost)
    state = json.loads((task / ".ino-propagate.json").read_text())
    (task / ".ino-propagate.json").write_text(json.dumps({**state, "finished": [kept]}))
    kept_stamp = (task / kept / "00002.png").stat().st_mtime_ns
    code, _, err = suite(*args, "--out", str(table))
    assert code == 0 and f"{kept}: already done" in err and "beta / davis: preset ino-davis, resumed" in err
    assert (task / kept / "00002.png").stat().st_mtime_ns == kept_stamp
    assert {p.name: p.read_bytes() for p in (task / lost).iterdir()} == masks
    after = document(table)["rows"]
    assert [after[i] for i in (0, 1, 3)] == [rows[i] for i in (0, 1, 3)]
    assert after[2]["metrics"] == rows[2]["metrics"] and json.loads((task / RECORD_NAME).read_text())["resumed"]
    # other settings: refused before any work, naming the setting; nothing written
    before = stamps(table)
    code, _, err = suite(*[a if a != "64" else "96" for a in args], "--out", str(table))
    assert code == 2 and err.count("\n") == 1
    assert "holds results made with other settings (changed: propagation.config.short_side)" in err
    assert stamps(table) == before


def test_a_quick_check_is_marked_and_a_task_without_one_is_refused(
    davis: Path, ytvos: tuple[Path, Path], one_model: list[str], tmp_path: Path, suite
) -> None:
    out = tmp_path / "quick"
    code, stdout, _ = suite(*one_model, "--davis-root", str(davis), "--max-frames", "4", "--out", str(out), "--quiet")
    assert code == 0 and "Quick check: only the first 4 frames" in stdout
    doc = document(out)
    assert doc["quick_check"] == 4 and doc["rows"][0]["max_frames"] == 4
    assert len(list((out / "random-vit_tiny" / "davis" / "synth-000").glob("*.png"))) == 4
    code, _, err = suite(*one_model, "--ytvos-root", str(ytvos[0]), "--max-frames", "4", "--out", str(tmp_path / "x"))
    assert code == 2 and "the YouTube-VOS 2018 task has no quick-check mode" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpoint", "random", "--checkpoint", "random", "DAVIS"], "two models are named 'random'"),
        (["--checkpoint", "random", "--name", "a", "--name", "b", "DAVIS"], "--name is given 2 time(s) for 1"),
        (["--checkpoint", "random", "--name", "a/b", "DAVIS"], "--name 'a/b': a model's name is its folder name"),
        (["--checkpoint", "random", "--name", "suite.md", "DAVIS"], "--name 'suite.md': a model's name is its folder"),
        (["--checkpoint", "random", "--davis-root", "absent"], "--davis-root absent: no such folder"),
        (["--checkpoint", "random", "--all-frames", "."], "--all-frames belongs to --ytvos-root"),
        (["--checkpoint", "random"], "give at least one task root"),
    ],
)
def test_bad_input_is_one_line_before_any_work(
    extra: list[str], message: str, davis: Path, tmp_path: Path, suite
) -> None:
    extra = [a for e in extra for a in (["--davis-root", str(davis)] if e == "DAVIS" else [e])]
    code, _, err = suite(*extra, "--out", str(tmp_path / "out"), "--device", "cpu")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
