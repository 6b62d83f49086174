"""Training logs: a JSON line per window of ``run.log_every`` steps, with the window's averages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ino.training.log import TrainLog, average, read_log


def record(step: int, masked: bool, loss: float) -> dict:
    terms = {"mim": 0.5 * loss, "aff": 0.25 * loss} if masked else {"mim": 0.0, "aff": 0.0}
    return {"step": step, "epoch": 0, "loss": loss, "out": loss / 4, **terms, "teacher_entropy": 1.0,
            "masked": masked, "lr": 0.1 * step, "wd": 0.04, "momentum": 0.99, "clips_per_s": 2.0 * step,
            "data_wait": 0.1}  # fmt: skip


def test_a_window_averages_its_steps_and_masked_terms_over_masked_steps_only() -> None:
    line = average([record(0, True, 1.0), record(1, False, 2.0), record(2, True, 3.0)])
    assert line["step"] == 2 and line["steps"] == 3 and line["masked"] == 2
    assert line["loss"] == pytest.approx(2.0) and line["out"] == pytest.approx(0.5)
    assert line["mim"] == pytest.approx(1.0) and line["aff"] == pytest.approx(0.5)  # the masked steps' mean
    assert line["lr"] == pytest.approx(0.2) and line["clips_per_s"] == pytest.approx(2.0)  # last value; mean
    assert "mim" not in average([record(0, False, 1.0)]) and average([record(0, False, 1.0)])["masked"] == 0


def test_every_n_steps_one_line_and_the_last_partial_window_on_close(tmp_path: Path) -> None:
    log = TrainLog(tmp_path, enabled=True, total_steps=7, start_step=0, every=3, progress=False)
    for step in range(7):
        log.step(record(step, step % 2 == 0, float(step)))
    log.record({"step": 6, "davis_J&F-Mean": 0.5})
    log.close()
    lines = read_log(tmp_path)
    assert [line["step"] for line in lines] == [2, 5, 6, 6]
    assert [line.get("steps") for line in lines] == [3, 3, None, 1]
    assert lines[0]["loss"] == pytest.approx(1.0) and lines[1]["masked"] == 1


def test_a_resumed_run_keeps_the_windows_aligned_to_step_numbers(tmp_path: Path) -> None:
    log = TrainLog(tmp_path, enabled=True, total_steps=9, start_step=4, every=3, progress=False)
    for step in range(4, 9):
        log.step(record(step, False, 1.0))
    log.close()
    assert [(line["step"], line["steps"]) for line in read_log(tmp_path)] == [(5, 2), (8, 3)]
