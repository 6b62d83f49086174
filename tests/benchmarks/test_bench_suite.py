"""``benchmarks/bench_suite.py`` without the references: one line says how to get them, and the ``ino`` side is
still timed and scored for both tasks, on tiny synthetic data (so a missing checkout never hides a broken script).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_suite.py"
TINY = ["--jhmdb-videos", "1", "--jhmdb-frames", "3", "--vip-videos", "1", "--vip-frames", "3"]


@pytest.mark.slow
def test_without_references_the_ino_side_is_timed_and_scored_for_both_tasks(tmp_path: Path) -> None:
    report_path, missing = tmp_path / "report.json", tmp_path / "no-references"
    args = ["--reference", str(missing), "--repeats", "1", "--scorer-repeats", "2", "--threads", "1", *TINY]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--work", str(tmp_path / "work"), "--json", str(report_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())

    message = report["reference_message"]
    assert str(missing / "CropMAE") in message and "timing the ino side only" in message
    assert "\n" not in message and done.stdout.splitlines()[0] == message
    assert report["reference"] is None
    assert set(report["tasks"]) == {"jhmdb", "vip"}
    for task, result in report["tasks"].items():
        assert result["videos"] == 1
        for stage, runs in (("propagation", 1), ("scorer", 2)):
            timings = result[stage]
            assert set(timings) == {"ino"}, f"{task} {stage}: only ino ran, no ratio"
            ino = timings["ino"]
            assert len(ino["walls_s"]) == runs and len(ino["cpus_s"]) == runs
            assert 0 < ino["wall_min_s"] <= ino["wall_s"] <= ino["wall_max_s"]
            assert ino["cpu_s"] > 0
        assert set(result["scores"]) == {"ino predictions, ino scorer"}
    pck = report["tasks"]["jhmdb"]["scores"]["ino predictions, ino scorer"]
    assert set(pck) == {f"PCK@{t}" for t in ("0.1", "0.2", "0.3", "0.4", "0.5")}
    assert all(0 <= value <= 100 for value in pck.values())
    assert list(pck.values()) == sorted(pck.values()), "PCK cannot fall as the threshold grows"
    miou = report["tasks"]["vip"]["scores"]["ino predictions, ino scorer"]["mIoU"]
    assert math.isfinite(miou) and 0 < miou <= 1
    assert "jhmdb  propagation  ino" in done.stdout and "vip    scorer       ino" in done.stdout
