"""The scoring pool forks only where that is safe, and a forked pool scores exactly what threads score, errors
included (one line naming the file, as from a thread)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.data.davis import DavisLayout
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.evaluation.scorer import evaluate
from ino.propagation.baselines import write_first_frame_baseline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux only")


def fresh_python(code: str) -> dict:
    """Run ``code`` in a new interpreter (one thread, nothing imported) and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_it_forks_in_a_plain_process_and_not_beside_torch_or_another_thread() -> None:
    code = """
import json, threading
from concurrent.futures import ProcessPoolExecutor
from ino.utils.pools import worker_pool
kinds = {}
with worker_pool(2) as pool:
    kinds["plain"] = isinstance(pool, ProcessPoolExecutor)
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
with worker_pool(2) as pool:
    kinds["thread"] = isinstance(pool, ProcessPoolExecutor)
stop.set()
other.join()
import torch
with worker_pool(2) as pool:
    kinds["torch"] = isinstance(pool, ProcessPoolExecutor)
print(json.dumps(kinds))
"""
    assert fresh_python(code) == {"plain": True, "thread": False, "torch": False}


@pytest.fixture
def benchmark(tmp_path: Path) -> tuple[Path, Path]:
    root, results = tmp_path / "bench", tmp_path / "results"
    names = write_benchmark(root, 3, SynthConfig(height=48, width=64, frames=20), seed=3)
    write_first_frame_baseline(DavisLayout(root), names, results)
    return root, results


def test_forked_workers_score_exactly_what_threads_score(benchmark: tuple[Path, Path]) -> None:
    root, results = benchmark
    here = evaluate(root, results, workers=2)  # pytest's process has other threads: threads here
    code = f"""
import json
from ino.evaluation.scorer import evaluate
from ino.utils.pools import forking_is_safe
safe = forking_is_safe()
scores = evaluate({str(root)!r}, {str(results)!r}, workers=2)
frames = {{s.name: [s.j.tolist(), s.f.tolist()] for s in scores.sequences}}
print(json.dumps({{"forked": safe, "frames": frames, "global": scores.global_results()}}))
"""
    forked = fresh_python(code)
    assert forked["forked"] is True
    assert forked["frames"] == {s.name: [s.j.tolist(), s.f.tolist()] for s in here.sequences}
    assert forked["global"] == here.global_results()


def test_an_error_in_a_forked_worker_is_the_same_one_line(benchmark: tuple[Path, Path]) -> None:
    root, results = benchmark
    sequence = DavisLayout(root).sequences()[1]
    frame = sorted((results / sequence).glob("*.png"))[5]
    Image.fromarray(np.full((48, 64), 9, np.uint8)).save(frame)
    done = subprocess.run(
        [sys.executable, "-m", "ino", "evaluate", "--davis-root", str(root), "--results", str(results), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"prediction {frame} contains object id 9" in done.stderr
