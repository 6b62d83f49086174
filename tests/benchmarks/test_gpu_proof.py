"""``benchmarks/gpu_proof.py --smoke``: every part runs on the CPU at tiny sizes with PyAV hidden, as on the GPU
image, so that the one GPU run a session gets cannot fail on an import, a path or a typo.

The smoke reads ``../shared/data`` when it is there (the real clips then go through the OpenCV reader) and
otherwise generates a tiny synthetic data set itself, so this test never skips.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_proof.py"
SHARED_DATA = REPO.parent / "shared" / "data"
#: the script run as on the GPU image: ``import av`` fails (``sys.modules['av'] = None`` makes it raise ImportError)
WITHOUT_PYAV = (
    "import runpy, sys; sys.modules['av'] = None; sys.argv = [{script!r}, *{args!r}]; "
    "runpy.run_path({script!r}, run_name='__main__')"
)


def run_script(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    code = WITHOUT_PYAV.format(script=str(SCRIPT), args=args)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def failures(node: Any, path: str = "parts") -> list[str]:
    """Every measurement recorded as failed or skipped, with where."""
    found = []
    if isinstance(node, dict):
        found += [f"{path}: {node[key]}" for key in ("error", "skipped") if key in node]
        for key, value in node.items():
            found += failures(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += failures(value, f"{path}[{i}]")
    return found


@pytest.mark.slow
def test_the_smoke_run_measures_every_part_without_pyav(tmp_path: Path) -> None:
    docs_results = REPO / "docs" / "results.md"
    before = docs_results.stat().st_mtime_ns if docs_results.exists() else None
    out, data = tmp_path / "out", SHARED_DATA if SHARED_DATA.is_dir() else tmp_path / "no-such-data"
    args = ["--smoke", "--out", str(out), "--work", str(tmp_path / "work"), "--data", str(data), "--budget-s", "240"]

    done = run_script(args, timeout=400)

    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads((out / "results.json").read_text())
    assert record["smoke"] is True
    assert record["environment"]["pyav"] is None  # PyAV really was hidden
    assert record["inputs"]["synthetic"] is not SHARED_DATA.is_dir()
    assert failures(record["parts"]) == []
    assert set(record["parts"]) == {"a", "b", "c"}

    a = record["parts"]["a"]
    assert finite(a["flops"]["per_clip"]) and a["flops"]["per_clip"] > 0
    points = a["throughput"]
    assert {(p["batch"], p["compile"]) for p in points} == {(1, False), (2, False), (1, True), (2, True)}
    assert all(finite(p["clips_per_s"]) and p["clips_per_s"] > 0 and finite(p["model_tflops_per_s"]) for p in points)
    assert a["peak"]["tflops"] is None and a["peak"]["reason"]  # no MFU on a CPU, and it says why
    assert a["profile"]["top_ops"] and sum(a["profile"]["stage_ms_per_step"].values()) > 0
    assert [row["workers"] for row in a["loader"]["rows"]] == [0, 2]
    assert all(row["clips_per_s"] > 0 and row["reader"] == "opencv" for row in a["loader"]["rows"])

    b = record["parts"]["b"]["runs"]
    assert [r["feature_dtype"] for r in b] == ["float32", "bfloat16"]
    assert all(r["frames_per_s"] > 0 and finite(r["projected_2000_frames_s"]) for r in b)

    c = record["parts"]["c"]
    assert c["training"]["steps"] >= 1 and Path(c["training"]["checkpoint"]).is_file()
    for key in ("random", "trained", "trained_teacher"):
        scores = [*c[key]["global"].values(), *c[key]["per_sequence_jf"].values()]
        assert scores and all(finite(v) and 0 <= v <= 1 for v in scores), key
        assert set(c[key]["per_sequence_jf"]) == set(c["protocol"]["sequences"])

    text = (out / "results.md").read_text()
    assert text.startswith("**SMOKE NUMBERS, NOT RESULTS:**")
    assert "## (a)" in text and "## (b)" in text and "## (c)" in text and "Failures\n\nNone." in text
    after = docs_results.stat().st_mtime_ns if docs_results.exists() else None
    assert after == before  # the smoke never writes over the real results


def test_missing_data_stops_at_once_with_one_line(tmp_path: Path) -> None:
    done = run_script(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "out"), "--device", "cpu"], 120)

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("gpu_proof: error: ")
    assert not (tmp_path / "out").exists()
