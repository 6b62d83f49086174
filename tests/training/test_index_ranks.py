"""Under torchrun only rank 0 probes the videos: the other ranks wait, then read its cache (2 gloo processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("av")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.distributed
def test_rank_0_builds_the_clip_index_and_the_other_rank_reads_its_cache(clips: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(_free_port()), str(ROOT / "tests" / "support" / "index_worker.py")]
    done = subprocess.run([*command, str(clips), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))

    shared = rank0["shared"], rank1["shared"]
    assert shared[0]["probed"] == 4 and not shared[0]["from_cache"]  # the 4 training clips
    assert shared[1]["probed"] == 0 and shared[1]["from_cache"]
    assert shared[0]["identity"] == shared[1]["identity"] and shared[0]["clips"] == shared[1]["clips"] > 0
    assert len(list((tmp_path / "shared" / "clip-index").glob("probes-*.npz"))) == 1

    failed = rank0["rank0-fails"], rank1["rank0-fails"]
    assert "cannot write" in failed[0]["error"] and failed[1]["probed"] == 0
    assert failed[1]["error"].startswith("rank 1: rank 0 could not build the clip index: ")
    assert "cannot write" in failed[1]["error"]

    other = rank0["other-files"], rank1["other-files"]
    assert "error" not in other[0] and other[1]["probed"] == 3
    assert "rank 1: its clip index differs from rank 0's" in other[1]["error"]
