"""One command, at most ~9 minutes on one H100/H200, that measures what the project claims and writes
``results.md`` and ``results.json`` (default: ``docs/``):

(a) training throughput at the paper's settings (ViT-S/8, clips of 4 frames, 8 local crops, bf16) for 8/16/32/64
    clips per step, eager and ``torch.compile``d: clips/s, FLOPs per clip (``FlopCounterMode``), MFU, a profile of
    a step, and the data loader's clips/s by worker count on ``ino prepare``d copies of the clips;
(b) label propagation at 480p, features included, fp32 and bf16: frames/s, peak memory, time for 2,000 frames;
(c) INO from scratch (ViT-S/8) for 4 minutes on ``<data>/videos``, propagated on ``<data>/davis-dev`` and scored
    with DAVIS J&F against the same random init.

    python benchmarks/gpu_proof.py --stage gpu-data           # here, with PyAV: copy + `ino prepare` the data
    PYTHONPATH=src python benchmarks/gpu_proof.py --data gpu-data --out $OUT    # on the GPU machine
    PYTHONPATH=src python benchmarks/gpu_proof.py --smoke     # every part on the CPU at tiny sizes (< 2 min)

Why it is built this way: GPU time is scarce and one run must succeed. Inputs are checked before any GPU work;
every part and measurement runs under a deadline carved from ``--budget-s`` (one that would overrun is recorded as
skipped); an exception is recorded (type, message, traceback tail) and the run goes on; both files are rewritten
atomically after every measurement, so a run killed at its time limit still leaves what it measured. The
compiled-throughput points run last: a compile cannot be interrupted, so an unexpectedly long one can only cost
itself. The GPU image has neither PyAV nor jsonargparse: this script needs neither (videos are read with OpenCV).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
if importlib.util.find_spec("ino") is None:  # a plain checkout without PYTHONPATH=src
    sys.path.append(str(REPO / "src"))

import torch  # noqa: E402

import gpu_proof_parts as parts  # noqa: E402
import gpu_proof_phases as run_phases  # noqa: E402
import gpu_proof_report as report  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data"
PREPARED, ORIGINALS, DAVIS = "videos-320p", "videos", "davis-dev"


class InputError(Exception):
    """Bad input found before any measurement: one line, exit status 2."""


@dataclass
class Inputs:
    """What the run reads, checked up front."""

    videos: Path  # the training / loader videos: prepared copies when there are any
    videos_note: str
    n_videos: int
    davis: Path
    sequences: list[str]
    synthetic: bool = False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=SHARED_DATA,
        help="folder with videos/ or videos-320p/ and davis-dev/ (default: ../shared/data)",
    )
    parser.add_argument(
        "--out", type=Path, help="where results.json and results.md go (default: docs/; with --smoke: gpu-proof-smoke/)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "gpu-proof-work",
        help="scratch folder (a fresh subfolder per run): prepared copies, the training run, predictions",
    )
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU at tiny sizes: smoke numbers")
    parser.add_argument("--device", help="default: cuda when available (cpu with --smoke)")
    parser.add_argument("--budget-s", type=float, help="overall wall-clock budget (default 540; 100 with --smoke)")
    parser.add_argument("--train-s", type=float, help="part c's training budget (default 240; 8 with --smoke)")
    parser.add_argument("--parts", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument("--peak-tflops", type=float, help="bf16 dense peak for MFU when the GPU is not known")
    parser.add_argument("--min-videos", type=int, help="fewest training videos accepted (default 8; 2 with --smoke)")
    parser.add_argument(
        "--stage",
        type=Path,
        help="only copy davis-dev and `ino prepare` the videos from --data "
        "into this folder (needs PyAV), for carrying to a GPU machine; then exit",
    )
    args = parser.parse_args(argv)
    args.parts = [p for p in "abc" if p in {x.strip() for x in args.parts.split(",")}]
    if not args.parts:
        parser.error("--parts names none of a, b, c")
    args.budget_s = args.budget_s or (100.0 if args.smoke else 540.0)
    args.min_videos = args.min_videos or (2 if args.smoke else 8)
    args.device = args.device or ("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    args.out = args.out or (REPO / "gpu-proof-smoke" if args.smoke else REPO / "docs")
    return args


# ------------------------------------------------------------------------------------------------------------ inputs
def count_videos(folder: Path) -> int:
    from ino.data.sources import list_videos

    try:
        return len(list_videos([str(folder)]))
    except Exception:
        return 0


def check_davis(root: Path) -> list[str]:
    """The sequences of a DAVIS-layout folder, each with >= 3 frames and a first annotation holding an object (read,
    not just listed); else InputError."""
    from ino.data.davis import DavisLayout, read_object_ids

    try:
        layout = DavisLayout(root)
        names = layout.sequences()
        for name in names:
            frames = layout.image_frames(name)
            first = layout.annotation_dir(name) / f"{frames[0].stem}.png" if frames else None
            if len(frames) < 3 or first is None or not first.is_file() or not read_object_ids(first).any():
                raise InputError(f"{root}: sequence {name} has < 3 frames or no first-frame annotation with an object")
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"{root}: not a readable DAVIS layout ({error})") from None
    if not names:
        raise InputError(f"{root}: no sequences")
    return names


def synthesise(folder: Path) -> Path:
    """A tiny DAVIS-layout set and a few unlabeled frame-folder videos (``ino synth``'s generator), for a smoke
    run on a machine without the shared data: the CI test then never skips."""
    from ino.data.synthetic import SynthConfig, write_benchmark

    write_benchmark(folder / DAVIS, 2, SynthConfig(frames=6), seed=0)
    write_benchmark(folder / "unlabeled", 3, SynthConfig(frames=24), seed=1)
    (folder / ORIGINALS).symlink_to(folder / "unlabeled" / "JPEGImages" / "480p", target_is_directory=True)
    return folder


def check_inputs(args: argparse.Namespace, work: Path) -> Inputs:
    """Fail at once, with one line, on anything that would waste GPU time later; prepare copies when possible."""
    data, synthetic = args.data, False
    if not data.is_dir():
        if not args.smoke:
            raise InputError(f"--data {data}: no such folder")
        data, synthetic = synthesise(work / "synthetic-data"), True
    davis = data / DAVIS
    sequences = check_davis(davis)
    prepared, originals = data / PREPARED, data / ORIGINALS
    if count_videos(prepared) >= args.min_videos:
        videos, note = prepared, f"`ino prepare` copies ({prepared})" + prepare_settings(prepared)
    elif count_videos(originals) >= args.min_videos:
        videos, note = originals, f"{'synthetic frame folders' if synthetic else 'original clips'} ({originals})"
        from ino.data.videos import import_av

        if import_av() is not None and not synthetic:
            videos, note = prepare_copies(originals, work / PREPARED), f"`ino prepare` copies made now from {originals}"
        elif not synthetic:
            note += ": PyAV is missing, so `ino prepare` cannot run; pass prepared copies as <data>/videos-320p"
    else:
        raise InputError(f"--data {data}: fewer than {args.min_videos} videos in {prepared} or {originals}")
    return Inputs(videos, note, count_videos(videos), davis, sequences, synthetic)


def prepare_settings(folder: Path) -> str:
    try:
        settings = json.loads((folder / "prepare-report.json").read_text())["settings"]
        return f", settings {settings}"
    except (OSError, ValueError, KeyError):
        return ""


def prepare_copies(source: Path, target: Path) -> Path:
    """``ino prepare --short-side 320`` (needs PyAV): the fast-seeking copies the docs tell users to train on."""
    from ino.data.transcode import TranscodeConfig, prepare

    report_ = prepare(source, target, TranscodeConfig(short_side=320), workers=os.cpu_count() or 1, progress=False)
    if report_.failed:
        raise InputError(f"ino prepare failed on {len(report_.failed)} file(s): {report_.failed[0]}")
    return target


def stage(args: argparse.Namespace) -> int:
    """Fill ``--stage`` with what a GPU run reads: davis-dev as is, and prepared copies of the videos."""
    target: Path = args.stage
    check_davis(args.data / DAVIS)
    shutil.copytree(args.data / DAVIS, target / DAVIS, dirs_exist_ok=True)
    prepare_copies(args.data / ORIGINALS, target / PREPARED)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"staged {target}: {size / 2**20:.1f} MiB ({count_videos(target / PREPARED)} prepared videos)")
    return 0


# ------------------------------------------------------------------------------------------------------- environment
def environment(device: torch.device) -> dict[str, Any]:
    import platform

    import cv2
    import numpy
    import timm

    from ino.data.videos import import_av

    av = import_av()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "pyav": getattr(av, "__version__", None),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),  # "highest": no TF32 in fp32 matmuls
        "device": str(device),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, capability=f"{props.major}.{props.minor}")
    return env


def git(*command: str) -> str | None:
    import subprocess

    try:
        done = subprocess.run(["git", *command], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# --------------------------------------------------------------------------------------------------------- the run
class Run:
    """The state one run shares between its phases, and the atomic writer of its two files."""

    def __init__(self, args: argparse.Namespace, sizes: parts.Sizes, inputs: Inputs, work: Path, end: float):
        self.args, self.sizes, self.inputs, self.work, self.end = args, sizes, inputs, work, end
        self.device = torch.device(args.device)
        command = ["python", "benchmarks/gpu_proof.py", *sys.argv[1:]]
        self.record: dict[str, Any] = {
            "smoke": args.smoke,
            "command": "PYTHONPATH=src " + shlex.join(command),
            "argv": list(getattr(sys, "orig_argv", sys.argv)),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "budget_s": args.budget_s,
            "environment": environment(self.device),
            "inputs": {
                "videos": str(inputs.videos),
                "videos_note": inputs.videos_note,
                "n_videos": inputs.n_videos,
                "davis": str(inputs.davis),
                "davis_sequences": inputs.sequences,
                "synthetic": inputs.synthetic,
            },
            "sizes": {k: v for k, v in sizes.__dict__.items()},
            "parts": {part: {} for part in args.parts},
            "wall_s": {},
        }

    def left(self, deadline: float) -> float:
        return deadline - time.monotonic()

    def guarded(self, what: str, need_s: float, deadline: float, measure: Callable[[], dict[str, Any]]) -> dict:
        """``measure()``, or ``{"skipped": why}`` when fewer than ``need_s`` seconds are left before ``deadline``,
        or ``{"error": ...}`` when it raises; the files are rewritten after each one."""
        left = self.left(deadline)
        if left < need_s:
            result: dict[str, Any] = {"skipped": f"{what}: needs ~{need_s:.0f} s, {max(left, 0):.0f} s left"}
        else:
            started = time.perf_counter()
            try:
                result = measure()
            except Exception as error:  # recorded, and the run goes on
                result = {"error": parts.describe_error(error)}
                print(f"gpu_proof: {what} failed: {type(error).__name__}: {error}", file=sys.stderr)
                parts.reset_memory(self.device)
            result.setdefault("wall_s", time.perf_counter() - started)
        print(f"gpu_proof: {what}: {report.one_line(result)}", file=sys.stderr, flush=True)
        return result

    def save(self) -> None:
        """Both files, each written to a temporary name and renamed: a reader never sees half of one."""
        self.args.out.mkdir(parents=True, exist_ok=True)
        texts = {
            "results.json": json.dumps(self.record, indent=2, default=str) + "\n",
            "results.md": report.markdown(self.record),
        }
        for name, text in texts.items():
            temporary = self.args.out / f".{name}.{os.getpid()}.tmp"
            temporary.write_text(text)
            os.replace(temporary, self.args.out / name)


def phases(args: argparse.Namespace, sizes: parts.Sizes) -> list[tuple[str, str, float]]:
    """(phase, part, reserve_s): the order of the run and the seconds each phase keeps for itself. A phase's
    deadline is the overall end minus the reserves of the phases after it, so time one does not use flows on."""
    scale = 1.0 if not args.smoke else 0.25
    plan = [
        ("a", "a", 80.0 * scale),
        ("b", "b", 40.0 * scale),
        ("c", "c", sizes.train_s + 50.0 * scale),
        ("a-compiled", "a", sizes.compile_need_s),
    ]
    return [phase for phase in plan if phase[1] in args.parts]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    if args.smoke:
        # one thread: on a small shared CPU, OpenMP threads spin-waiting for a busy core made tiny steps 100x slower
        torch.set_num_threads(1)
    sizes = parts.SMOKE if args.smoke else parts.GPU
    if args.train_s:
        sizes = replace(sizes, train_s=args.train_s)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = args.work / f"run-{stamp}-{os.getpid()}"
    try:
        if args.stage:
            return stage(args)
        if not args.data.is_dir() and not args.smoke:
            raise InputError(f"--data {args.data}: no such folder")
        if not args.smoke and args.device == "cpu":
            raise InputError("full sizes need a CUDA GPU (no CUDA device here); --smoke runs every part on the CPU")
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"--device {args.device}: no CUDA device visible")
        work.mkdir(parents=True)
        inputs = check_inputs(args, work)
    except InputError as error:
        shutil.rmtree(work, ignore_errors=True)  # this run's own, fresh folder
        print(f"gpu_proof: error: {error}", file=sys.stderr)
        return 2
    run = Run(args, sizes, inputs, work, started + args.budget_s)
    run.save()
    plan = phases(args, sizes)
    for i, (phase, part, _) in enumerate(plan):
        deadline = run.end - sum(reserve for _, _, reserve in plan[i + 1 :])
        mark = time.perf_counter()
        try:
            with parts.quiet_logs():
                run_phases.PHASES[phase](run, deadline)
        except Exception as error:  # a bug between measurements: recorded, and the next phase still runs
            run.record["parts"][part][f"phase {phase}"] = {"error": parts.describe_error(error)}
            print(f"gpu_proof: phase {phase} failed: {type(error).__name__}: {error}", file=sys.stderr)
        run.record["wall_s"][phase] = time.perf_counter() - mark
        run.save()
    run.record["wall_s"]["total"] = time.monotonic() - started
    run.save()
    errors = report.errors(run.record)
    print(
        f"gpu_proof: wrote {args.out / 'results.json'} and results.md in {time.monotonic() - started:.0f} s"
        + (f"; {len(errors)} measurement(s) failed: {', '.join(errors)}" if errors else "")
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
