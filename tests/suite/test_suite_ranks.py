"""``torchrun -m ino suite`` with 2 gloo processes on the CPU gives the table of one process.

Both runs use one thread per process (torchrun's default under several ranks), so that the only difference is the
split of each task's sequences over the ranks (tests/commands/test_propagate_ranks.py shows the masks are the same
bytes; here the whole table is).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.distributed


def suite(ranks: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    command = [*(launcher if ranks > 1 else [sys.executable]), "-m", "ino", "suite", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_ranks_give_the_table_of_one_process(davis: Path, two_models: list[str], tmp_path: Path) -> None:
    outs = {ranks: tmp_path / f"ranks{ranks}" for ranks in (1, 2)}
    runs = {ranks: suite(ranks, *two_models, "--davis-root", str(davis), "--out", str(out))
            for ranks, out in outs.items()}  # fmt: skip
    assert "rank 1 of 2: 1 of 2 to do" in runs[2].stderr  # each rank propagated one of the two sequences
    assert runs[2].stdout.count("## Overview") == 1  # rank 0 alone scores and prints the table
    tables = {ranks: json.loads((out / "suite.json").read_text()) for ranks, out in outs.items()}
    assert tables[2]["generated"]["ranks"] == 2 and tables[1]["generated"]["ranks"] == 1
    for one, two in zip(tables[1]["rows"], tables[2]["rows"], strict=True):
        assert (one["model"], one["task"], one["status"]) == (two["model"], two["task"], "scored")
        assert one["metrics"] == two["metrics"] and one["per_item"] == two["per_item"] and one["card"] == two["card"]
    masks = [sorted((out / "beta" / "davis").rglob("*.png")) for out in outs.values()]
    assert [p.read_bytes() for p in masks[0]] == [p.read_bytes() for p in masks[1]]
    assert not list((outs[2] / "beta" / "davis").glob(".ino-propagate.rank*"))  # the ranks' records folded in
