"""``ino demo``'s clock: propagation passes that stop at their deadline, the fixed step count, and a report that says
what was cut. The clock is a fake one that advances with the frames written, so the load of the machine running
the tests changes nothing."""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ino.data.synthetic import SynthConfig, write_benchmark
from ino.demo import timed
from ino.demo.report import summary
from ino.demo.run import DemoConfig, DemoResult, plan_steps
from ino.demo.timed import Coverage, propagate_within
from ino.models.vit import build_vit
from ino.propagation.presets import resolve_config

FRAMES = 8


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "synth"
    write_benchmark(root, 3, SynthConfig(height=48, width=64, frames=FRAMES), seed=0)
    return root


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: a second torch thread spin-waiting on a busy core made these 10x
    slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FrameClock:
    """A monotonic clock that moves only when a mask is written: 1 s per frame, ``slow_s`` per frame once
    ``slow_after`` frames are done (the machine's load changed in the middle of a pass)."""

    def __init__(self, slow_after: int = 10**9, slow_s: float = 1.0) -> None:
        self.now, self.frames, self.slow_after, self.slow_s = 0.0, 0, slow_after, slow_s

    def monotonic(self) -> float:
        return self.now

    def wrote(self) -> None:
        self.frames += 1
        self.now += self.slow_s if self.frames > self.slow_after else 1.0


def run_pass(benchmark: Path, out: Path, deadline: float, clock: FrameClock, monkeypatch: pytest.MonkeyPatch):
    write_mask = timed.write_mask

    def counted(path: Path, ids: object) -> None:
        write_mask(path, ids)
        clock.wrote()

    monkeypatch.setattr(timed, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(timed, "write_mask", counted)
    torch.manual_seed(0)
    backbone = build_vit("vit_tiny", patch_size=16, img_size=64).eval()
    config = resolve_config("ino-davis", short_side=48, patch_size=16, size_multiple=16, radius=3)
    names = ["synth-000", "synth-001", "synth-002"]
    return propagate_within(backbone, benchmark, out, config, names, None, deadline)


def written(folder: Path) -> dict[str, int]:
    return {p.name: len(list(p.glob("*.png"))) for p in sorted(folder.iterdir())}


def test_a_pass_with_time_for_everything_propagates_everything(benchmark: Path, tmp_path: Path, monkeypatch) -> None:
    done = run_pass(benchmark, tmp_path, 1000.0, FrameClock(), monkeypatch)
    assert (done.sequences, done.frames, done.cut) == (["synth-000", "synth-001", "synth-002"], None, False)
    assert written(tmp_path) == {"synth-000": FRAMES, "synth-001": FRAMES, "synth-002": FRAMES}


def test_a_sequence_that_would_end_past_the_deadline_is_not_started(benchmark: Path, tmp_path, monkeypatch) -> None:
    # 1 s a frame: the second sequence ends at 16 s, within the 20 s deadline; the third would end at 24 s
    done = run_pass(benchmark, tmp_path, 20.0, FrameClock(), monkeypatch)
    assert (done.sequences, done.frames, done.cut) == (["synth-000", "synth-001"], None, True)
    assert written(tmp_path) == {"synth-000": FRAMES, "synth-001": FRAMES}


def test_a_load_that_rises_mid_pass_abandons_the_sequence_it_cuts(benchmark: Path, tmp_path, monkeypatch) -> None:
    """The case of issue 21: the pass was planned at one speed and the machine slowed down during it."""
    clock = FrameClock(slow_after=10, slow_s=3.0)  # the second sequence looks like 8 s, then frames cost 3 s
    done = run_pass(benchmark, tmp_path, 20.0, clock, monkeypatch)
    assert (done.sequences, done.frames, done.cut) == (["synth-000"], None, True)
    assert written(tmp_path) == {"synth-000": FRAMES}  # no half sequence left to be scored
    assert clock.now <= 20.0 + 3.0  # stopped at the first frame that ended past the deadline


def test_a_deadline_already_past_keeps_the_first_sequence_cut_to_three_frames(benchmark: Path, tmp_path, monkeypatch):
    done = run_pass(benchmark, tmp_path, -1.0, FrameClock(), monkeypatch)
    assert (done.sequences, done.frames, done.cut) == (["synth-000"], timed.MIN_FRAMES, True)
    assert written(tmp_path) == {"synth-000": timed.MIN_FRAMES}


def test_the_step_count_is_fixed_however_fast_the_machine() -> None:
    """Issue 21: a machine 3x faster trained 3x the steps and scored under random init; now it stops at the peak."""
    settings = DemoConfig()
    assert plan_steps(settings, left_s=600.0, step_s=0.001) == settings.steps == 360
    assert plan_steps(settings, left_s=111.0, step_s=1.0) == 100  # a slow machine: what the budget holds
    assert plan_steps(settings, left_s=-5.0, step_s=1.0) == settings.min_steps


def result(steps: int, planned: int, stopped: bool, coverage: Coverage) -> DemoResult:
    settings = DemoConfig(budget_s=600)
    made = DemoResult(settings, [], steps, 0.5, 100.0, 321.0, "", "", planned_steps=planned)
    made.stopped_at_deadline, made.coverage = stopped, {"synthetic": coverage}
    return made


def test_the_report_says_the_step_count_is_fixed_and_that_nothing_was_cut() -> None:
    whole = Coverage(6, 6, [f"s{i}" for i in range(6)], None, False)
    lines = summary(result(360, 360, False, whole))
    assert lines[0].startswith("Whole demo: 321 s of the 600 s budget")
    assert lines[1].startswith("Training: 360 steps, the fixed count.") and "learning curves peak" in lines[1]
    assert lines[2].startswith("Nothing was cut")


def test_the_report_says_what_the_clock_cut() -> None:
    cut = Coverage(6, 4, ["s0", "s1"], None, False)
    lines = summary(result(200, 250, True, cut))
    assert "200 steps instead of the fixed 360" in lines[1] and "the budget held 250" in lines[1]
    assert "stopped at the budget's deadline after 200 of the 250 steps" in lines[1]
    assert lines[2] == (
        "Cut from synthetic: the random-init pass reached 4 of the 6 sequences within its 30% of the budget; the "
        "trained pass reached 2 of those 4 before the deadline (the machine ran slower than during the random-init "
        "pass). All three columns are scored on the same 2 sequences."
    )
    frames = summary(result(360, 360, False, replace(cut, sequences=["s0"], frames=3, frames_cut=True)))
    assert "sequence s0 was propagated through its first 3 frames only" in frames[2]
    assert frames[2].endswith("All three columns are scored on that sequence.")
