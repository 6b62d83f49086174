"""``torchrun -m ino propagate`` with 2 gloo processes on the CPU writes the bytes one process writes.

Both runs use one thread per process (torchrun's default under several ranks), so that the only difference is the
split of the sequences over ranks. A random-init ViT-Tiny/16 on small synthetic sequences of unequal length
keeps each launch to seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ino.data.synthetic import SynthConfig, write_benchmark
from support.layouts import shorten, ytvos_from_davis

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--arch", "vit_tiny", "--scale-size", "96", "--radius", "4", "--device", "cpu"]
pytestmark = pytest.mark.distributed


def propagate(ranks: int, *args: str, checkpoint: str = "random", ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    command = [
        *(launcher if ranks > 1 else [sys.executable]),
        "-m",
        "ino",
        "propagate",
        *args,
        "--checkpoint",
        checkpoint,
        *TINY,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four synthetic DAVIS sequences of 8, 6, 5 and 4 frames."""
    root = tmp_path_factory.mktemp("uneven")
    names = write_benchmark(root, sequences=4, config=SynthConfig(height=96, width=160, frames=8), seed=11)
    for name, keep in zip(names[1:], (6, 5, 4), strict=True):
        shorten(root, name, keep)
    return root


def test_two_ranks_give_the_davis_results_of_one_process_and_resume_a_killed_rank(uneven: Path, tmp_path: Path) -> None:
    single, double = tmp_path / "single", tmp_path / "double"
    propagate(1, "--davis-root", str(uneven), "--out", str(single), "--evaluate", "--quiet")
    done = propagate(2, "--davis-root", str(uneven), "--out", str(double), "--evaluate")
    assert "rank 0 of 2: 2 of 4 to do, 12 frames" in done.stderr  # 8 + 4 against 6 + 5
    assert "rank 1 of 2: 2 of 4 to do, 11 frames" in done.stderr
    assert done.stdout.count("J&F-Mean") == 1  # rank 0 alone evaluates and prints
    assert pngs(double) == pngs(single) and len(pngs(single)) == 8 + 6 + 5 + 4 + 1  # masks and the J&F chart
    scores = [json.loads((out / "evaluation-val.json").read_text()) for out in (single, double)]
    assert scores[0]["global"] == scores[1]["global"] and scores[0]["sequences"] == scores[1]["sequences"]
    state = json.loads((double / ".ino-propagate.json").read_text())
    assert sorted(state["finished"]) == sorted(json.loads((single / ".ino-propagate.json").read_text())["finished"])
    assert not list(double.glob(".ino-propagate.rank*"))
    # a job killed after rank 1 finished one sequence: its own record survives, the state file does not know it
    names = sorted(state["finished"])
    kept, lost = names[0], names[1]
    state["finished"] = [n for n in state["finished"] if n not in (kept, lost)]
    (double / ".ino-propagate.json").write_text(json.dumps(state))
    (double / ".ino-propagate.rank1.json").write_text(json.dumps({"settings": state["settings"], "finished": [kept]}))
    for png in (double / lost).glob("*.png"):
        png.unlink()
    stamp = (double / kept / "00000.png").stat().st_mtime_ns
    done = propagate(2, "--davis-root", str(uneven), "--out", str(double))
    assert (double / kept / "00000.png").stat().st_mtime_ns == stamp  # kept, not redone
    assert "1 of 1 to do" in done.stderr and "0 of 1 to do" in done.stderr  # only the lost one, on one rank
    assert pngs(double) == pngs(single)
    assert sorted(json.loads((double / ".ino-propagate.json").read_text())["finished"]) == names
    assert not list(double.glob(".ino-propagate.rank*"))


def test_two_ranks_give_the_youtube_vos_results_of_one_process(uneven: Path, tmp_path: Path) -> None:
    valid, all_frames, names = ytvos_from_davis(uneven, tmp_path / "ytvos", sequences=3)
    outs = {ranks: tmp_path / f"out{ranks}" for ranks in (1, 2)}
    for ranks, out in outs.items():
        propagate(ranks, "--ytvos-root", str(valid), "--all-frames", str(all_frames), "--out", str(out), "--quiet")
    assert pngs(outs[2]) == pngs(outs[1]) and {p.split("/")[1] for p in pngs(outs[1])} == set(names)
    archives = [zipfile.ZipFile(out / "Annotations.zip") for out in outs.values()]
    assert archives[0].namelist() == archives[1].namelist()
    assert all(archives[0].read(n) == archives[1].read(n) for n in archives[0].namelist())


def test_a_user_error_is_printed_once_and_every_rank_exits_with_2(uneven: Path, tmp_path: Path) -> None:
    line = f"ino propagate: error: {tmp_path / 'absent.pth'}: file not found"
    done = propagate(2, "--davis-root", str(uneven), "--out", str(tmp_path / "out"),
                     checkpoint=str(tmp_path / "absent.pth"), ok=False)  # fmt: skip
    printed = [text for text in done.stderr.splitlines() if text.startswith("ino propagate")]
    assert printed == [line]  # once, by rank 0, not once per rank
    exit_codes = [text.split(":")[1].split()[0] for text in done.stderr.splitlines() if "exitcode  :" in text]
    assert exit_codes and set(exit_codes) == {"2"}  # no rank stopped by a signal
    assert f"traceback : {line}" in done.stderr  # torchrun's failure summary shows the error, not a bare exit code
