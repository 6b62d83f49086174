"""JHMDB keypoint and VIP part propagation: ``ino`` against CropMAE's scripts, same data, same random ViT, end to end.

    python benchmarks/bench_suite.py [--reference references] [--reference-python PY] [--repeats 3]
        [--scorer-repeats 5] [--threads N] [--tasks jhmdb,vip] [--json FILE] [--work DIR]

Inputs, made once per run in a temporary folder (``--work`` keeps them):

- one seeded random ``vit_small_patch16_224`` (timm, ``num_classes=0``), CropMAE's ViT-S/16, saved as
  ``{"model": state_dict}``: the layout CropMAE's ``models_mae.vits16(ckpt_path=...)`` loads (its keys are timm's)
  and ``ino`` loads with ``--checkpoint FILE --arch vit_small_patch16_224``;
- a synthetic JHMDB (``ino.data.synthetic_jhmdb``; ``--jhmdb-videos`` x ``--jhmdb-frames``, 240 x 320; the 4th
  video has one frame) and a synthetic VIP_Fine (``ino.data.synthetic_vip``, ``--vip-videos`` x ``--vip-frames``,
  180 x 320, every frame annotated, as VIP_Fine holds the annotated key frames only: CropMAE's loader pairs the
  n-th image with the n-th annotation).

Each propagation runs ``--repeats`` times per side, interleaved (the order alternates), each a new process from
start to finish (start-up, model loading, propagation, writing every output the tool writes by default):
``ino propagate --preset cropmae-jhmdb|cropmae-vip --feature-dtype float32`` (``--ino-feature-dtype``; ``default``
leaves ``ino``'s choice, bf16 on a CPU with native bf16) against CropMAE's ``src/test.py`` with the arguments its
``start.py`` passes (see ``bench_suite_refs.py``: a stand-in runner, since CropMAE has no one-task command).
CropMAE caches one-hot ``.npy`` files inside VIP's annotation folders; they are deleted before and after each of
its runs, so each run is a first run. Then the scorers, ``--scorer-repeats`` times, interleaved, on the same files
(CropMAE's last predictions; converted to ``ino``'s keypoint files for JHMDB): ``ino evaluate`` against
``eval_pck.py`` (via a stand-in: its entry point never runs) and ``eval_vip.py``. Wall time (median, min-max),
CPU time (user + system of the process and the children it waited for, ``RUSAGE_CHILDREN``) and the ratios
CropMAE / ``ino`` of the medians are printed, with both sides' scores: CropMAE's predictions by its scorer and by
``ino``'s (these must agree), and ``ino``'s predictions by ``ino``. Both sides get ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` = ``--threads``; each keeps its own defaults otherwise (CropMAE: batch 5, 4 loader workers;
``ino``: batch 1 on a CPU, ``--workers`` = CPU count for scoring).

Without a usable CropMAE checkout only ``ino`` is timed, after one line saying how to get it. The reference code
is never committed nor imported here. Setup used (2026-12-05; CropMAE at 5d0dab2):

    fetch github:alexandre-eymael/CropMAE           # a bare git dir under /work/.mirror/...
    mkdir -p references/CropMAE && git --git-dir=/work/.mirror/alexandre-eymael+CropMAE/repo archive HEAD \\
        | tar -x -C references/CropMAE               # references/ is git-ignored
    python3.11 -m venv /work/refs/venv-bench        # the project venv's packages + what CropMAE adds
    echo /work/main/.venv/lib/python3.11/site-packages \\
        > /work/refs/venv-bench/lib/python3.11/site-packages/ino-venv.pth
    /work/refs/venv-bench/bin/pip install imageio scikit-image
    python benchmarks/bench_suite.py --reference-python /work/refs/venv-bench/bin/python --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_suite_refs import CropMAE, clear_label_caches, dat_to_keypoints, find_cropmae, parse_scores, write_list
from ino.data.synthetic_jhmdb import JhmdbSynthConfig, write_jhmdb_benchmark
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from timed_process import ino_command, run_timed

REPO = Path(__file__).resolve().parents[1]
ARCH = "vit_small_patch16_224"
TASKS = ("jhmdb", "vip")
SCORE_KEYS = {"jhmdb": ("PCK@0.1", "PCK@0.2"), "vip": ("mIoU",)}


@dataclass
class Job:
    """One side of a comparison: ``make(repeat)`` gives the command and its folder; ``before`` runs untimed."""

    side: str
    make: Callable[[int], tuple[list[str], Path]]
    before: Callable[[], object] = lambda: None
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    stdout: str = ""

    def summary(self) -> dict[str, object]:
        return {
            "wall_s": statistics.median(self.walls),
            "wall_min_s": min(self.walls),
            "wall_max_s": max(self.walls),
            "cpu_s": statistics.median(self.cpus),
            "walls_s": self.walls,
            "cpus_s": self.cpus,
        }


def run_timed_job(job: Job, repeat: int, env: dict[str, str]) -> None:
    """One run of ``job``'s side, after its untimed preparation."""
    command, cwd = job.make(repeat)
    job.before()
    wall, cpu, job.stdout = run_timed(command, cwd=cwd, env=env)
    job.walls.append(wall)
    job.cpus.append(cpu)


def measure(jobs: list[Job], repeats: int, env: dict[str, str]) -> dict[str, object]:
    """Interleaved repeats (the order alternates); per side its summary, and CropMAE / ino of the medians."""
    for repeat in range(repeats):
        for job in jobs if repeat % 2 == 0 else jobs[::-1]:
            run_timed_job(job, repeat, env)
    result: dict[str, object] = {job.side: job.summary() for job in jobs}
    if len(jobs) == 2:
        ino, ref = (job.summary() for job in jobs)
        result["ratio_wall"] = ref["wall_s"] / ino["wall_s"]
        result["ratio_cpu"] = ref["cpu_s"] / ino["cpu_s"]
    return result


def save_random_vit(path: Path, seed: int) -> Path:
    """The one backbone of both sides: seeded random weights in CropMAE's checkpoint layout (``model``)."""
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model(ARCH, pretrained=False, num_classes=0)
    torch.save({"model": model.state_dict()}, path)
    return path


def ino_scores(task: str, folder: Path) -> dict[str, float]:
    """The global numbers of ``ino evaluate``'s JSON (PCK in percent; VIP mIoU as a fraction, as eval_vip.py)."""
    name = "pck.json" if task == "jhmdb" else next(folder.glob("vip_results-*.json")).name
    scores = json.loads((folder / name).read_text())["global"]
    return {key: scores[key] for key in scores if key.startswith("PCK@") or key == "mIoU"}


def make_data(task: str, args: argparse.Namespace, root: Path) -> tuple[list[str], list[str]]:
    """The synthetic benchmark of ``task``; its video names and the selection flags ``ino`` gets."""
    if task == "jhmdb":
        names = write_jhmdb_benchmark(root, args.jhmdb_videos, JhmdbSynthConfig(frames=args.jhmdb_frames), args.seed)
        return names, ["--list", str(root / "synth_list.txt")]
    config = SynthVipConfig(frames=args.vip_frames, key_every=1, single_annotation_video=False)
    return write_vip_benchmark(root, args.vip_videos, config, seed=args.seed), []


def bench_task(task: str, args: argparse.Namespace, work: Path, ref: CropMAE | None) -> dict[str, object]:
    """Propagation and scorer timings of one task, and the scores of each side's predictions."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    root, runs = work / task, work / "runs" / task
    shutil.rmtree(runs, ignore_errors=True)  # a kept --work: ino would resume its earlier runs
    names, selection = make_data(task, args, root)
    dtype = [] if args.ino_feature_dtype == "default" else ["--feature-dtype", args.ino_feature_dtype]
    propagate = ["propagate", f"--{task}-root", str(root), "--preset", f"cropmae-{task}", *selection]
    propagate += ["--checkpoint", str(args.vit), "--arch", ARCH, *dtype, "--quiet", "--out"]
    jobs = [Job("ino", lambda r: ([*ino_command(), *propagate, str(runs / f"ino-{r}")], work))]
    clean = (lambda: clear_label_caches(root)) if task == "vip" else (lambda: None)
    filelist, lists_dir = "", work / "lists"
    if ref is not None:
        filelist = write_list(task, root, names, lists_dir)
        jobs.append(
            Job(
                "CropMAE",
                lambda r: (ref.propagate_command(task, args.vit, filelist, runs / f"cropmae-{r}"), lists_dir),
                before=clean,
            )
        )
    result: dict[str, object] = {"videos": len(names), "propagation": measure(jobs, args.repeats, env)}
    clean()
    last = args.repeats - 1
    scores = {"ino predictions, ino scorer": score_once(task, root, selection, runs / f"ino-{last}", work, env)}
    # the scorers' race: CropMAE's predictions when it ran (both scorers then read the same files), else ino's
    scored = predictions = runs / f"cropmae-{last}" if ref is not None else runs / f"ino-{last}"
    if ref is not None and task == "jhmdb":
        scored = dat_to_keypoints(predictions, root, names, work / "cropmae-keypoints")
    evaluate = ["evaluate", f"--{task}-root", str(root), *selection, "--results", str(scored), "--quiet", "--out"]
    scorers = [Job("ino", lambda r: ([*ino_command(), *evaluate, str(runs / f"scores-{r}")], work))]
    if ref is not None:
        reference = ref.scorer_command(task, filelist, predictions, root / "Annotations" / "Category_ids")
        scorers.append(Job("CropMAE", lambda _r: (reference, lists_dir)))
    result["scorer"] = measure(scorers, args.scorer_repeats, env)
    if ref is not None:
        scores["CropMAE predictions, CropMAE scorer"] = parse_scores(task, scorers[1].stdout)
        scores["CropMAE predictions, ino scorer"] = ino_scores(task, runs / f"scores-{args.scorer_repeats - 1}")
    result["scores"] = scores
    return result


def score_once(task: str, root: Path, selection: list[str], results: Path, work: Path, env: dict[str, str]) -> dict:
    """``ino evaluate`` of ``ino``'s own predictions, once, untimed."""
    out = results.parent / f"{results.name}-scores"
    command = [*ino_command(), "evaluate", f"--{task}-root", str(root), *selection, "--results", str(results)]
    subprocess.run([*command, "--out", str(out), "--quiet"], cwd=work, env=env, check=True, capture_output=True)
    return ino_scores(task, out)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def print_tables(report: dict[str, object]) -> None:
    print(
        f"\n{'task':<6} {'stage':<12} {'side':<8} {'wall s (min-max)':>24} {'CPU s':>9} {'ref/ino wall':>13}"
        f" {'ref/ino CPU':>12}"
    )
    for task, result in report["tasks"].items():
        for stage in ("propagation", "scorer"):
            timings = result[stage]
            for side in ("ino", "CropMAE"):
                if side not in timings:
                    continue
                t = timings[side]
                spread = f"{t['wall_s']:.2f} ({t['wall_min_s']:.2f}-{t['wall_max_s']:.2f})"
                ratios = f"{timings['ratio_wall']:>13.2f} {timings['ratio_cpu']:>12.2f}" if side == "CropMAE" else ""
                print(f"{task:<6} {stage:<12} {side:<8} {spread:>24} {t['cpu_s']:>9.2f} {ratios}")
    print(f"\n{'task':<6} {'predictions, scorer':<36} scores")
    for task, result in report["tasks"].items():
        for what, scores in result["scores"].items():
            shown = "  ".join(f"{key} {scores[key]:.4f}" for key in SCORE_KEYS[task])
            print(f"{task:<6} {what:<36} {shown}")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, default=REPO / "references", help="folder holding CropMAE/")
    parser.add_argument("--reference-python", default=sys.executable, help="the Python that runs CropMAE")
    parser.add_argument("--repeats", type=int, default=3, help="propagation runs per side")
    parser.add_argument("--scorer-repeats", type=int, default=5, help="scorer runs per side")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP/MKL threads, both sides")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: jhmdb, vip")
    parser.add_argument("--jhmdb-videos", type=int, default=4)
    parser.add_argument("--jhmdb-frames", type=int, default=20)
    parser.add_argument("--vip-videos", type=int, default=3)
    parser.add_argument("--vip-frames", type=int, default=10)
    parser.add_argument("--ino-feature-dtype", default="float32", choices=("float32", "bfloat16", "default"))
    parser.add_argument("--seed", type=int, default=0, help="ViT weights and synthetic data")
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    tasks = [task for task in args.tasks.split(",") if task]
    if not tasks or set(tasks) - set(TASKS) or min(args.repeats, args.scorer_repeats) < 1:
        parser.error("--tasks takes jhmdb and/or vip; --repeats and --scorer-repeats at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as scratch:
        work = (args.work or Path(scratch)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        args.vit = save_random_vit(work / f"{ARCH}-random-seed{args.seed}.pth", args.seed)
        found = find_cropmae(args.reference.resolve(), args.reference_python, work)
        ref = found if isinstance(found, CropMAE) else None
        if ref is None:
            print(found)
        load_before = os.getloadavg()
        report: dict[str, object] = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load_before},
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "reference": str(ref.root) if ref else None,
            "reference_message": None if ref else found,
            "tasks": {task: bench_task(task, args, work, ref) for task in tasks},
        }
        report["machine"]["load_after"] = os.getloadavg()
    print_tables(report)
    print(
        f"\n{report['machine']['cpu']}, {report['machine']['cores']} cores, load {load_before} -> "
        f"{report['machine']['load_after']}, {report['date']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
