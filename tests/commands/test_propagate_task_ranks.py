"""``torchrun -m ino propagate --jhmdb-root`` / ``--vip-root`` with 2 gloo processes on the CPU writes the bytes one
process writes: keypoint files and contact sheets, part maps, the merged run state, and the scores of --evaluate.

One thread per process in both runs (torchrun's default under several ranks), so that only the split of the videos
differs; a random-init ViT-Tiny/8 at a 64-pixel short side on tiny synthetic data keeps each launch short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--checkpoint", "random", "--arch", "vit_tiny", "--preset", "ino-davis", "--scale-size", "64",
        "--device", "cpu", "--evaluate"]  # fmt: skip
pytestmark = pytest.mark.distributed


def propagate(ranks: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    command = [*(launcher if ranks > 1 else [sys.executable]), "-m", "ino", "propagate", *args, *TINY]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def outputs(folder: Path) -> dict[str, bytes]:
    """Every result file but the timed score reports, by relative path."""
    kept = (".json", ".png")
    skipped = {"pck.json", "vip_results-val.json"}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.suffix in kept and p.name not in skipped and not p.name.startswith(".ino-propagate")
    }


def scores(path: Path) -> dict[str, object]:
    document = json.loads(path.read_text())
    return {key: value for key, value in document.items() if key != "protocol"}


@pytest.mark.parametrize("task", ["jhmdb", "vip"])
def test_two_ranks_write_what_one_process_writes(task: str, tmp_path: Path) -> None:
    root = tmp_path / task
    if task == "jhmdb":
        write_jhmdb_benchmark(root, videos=4, config=JhmdbSynthConfig(height=60, width=80, frames=5), seed=1)
        args, report = ["--jhmdb-root", str(root), "--list", str(root / LIST_NAME)], "pck.json"
    else:
        write_vip_benchmark(root, videos=3, config=SynthVipConfig(height=60, width=100, frames=5, key_every=2))
        args, report = ["--vip-root", str(root)], "vip_results-val.json"
    single, double = tmp_path / "single", tmp_path / "double"
    propagate(1, *args, "--out", str(single), "--quiet")
    done = propagate(2, *args, "--out", str(double))
    assert "rank 0 of 2" in done.stderr and "rank 1 of 2" in done.stderr
    written = outputs(single)
    assert outputs(double) == written and len(written) >= 4
    assert scores(double / report) == scores(single / report)
    states = [json.loads((out / ".ino-propagate.json").read_text()) for out in (single, double)]
    assert sorted(states[0]["finished"]) == sorted(states[1]["finished"]) and len(states[0]["finished"]) >= 3
    assert not list(double.glob(".ino-propagate.rank*"))
