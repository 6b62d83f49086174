"""``ino evaluate`` against the official davis2017-evaluation toolkit, side by side, end to end, on the same files.

    python benchmarks/bench_evaluate.py [--davis-dev ../shared/data/davis-dev] [--official benchmarks/.official]
        [--official-python PYTHON] [--repeats 5] [--work DIR]

Predictions are written by other tools than ``ino``, as a method's outputs are: for every frame of the real dev
set, the ground truth eroded, dilated or shifted (cycling over frames; a shifted frame in 7 is left empty, and every
4th frame gets a small false-positive blob in a corner), saved

- by OpenCV (``cv2.imwrite`` of the id map: an 8-bit grayscale PNG, Sub-filtered, as OpenCV writes),
- by Pillow as a palette PNG with ``compress_level=1``,
- by Pillow as a palette PNG with ``optimize=True``,

into a temporary folder (``--work`` keeps them). ``--copies 3`` lists every dev sequence three times under new
names (873 frame-objects, the size of a method's full output; issue 21 measured 934), so that start-up weighs what
it weighs on a real run. For each set both programs run ``--repeats`` times, interleaved
(the order alternates), each as a new process from start to finish: ``ino evaluate --quiet`` (interpreter start-up,
imports, PNG reading, scoring, CSVs, JSON, chart) and the toolkit's ``evaluation_method.py --task semi-supervised``
(its CSVs are deleted before each run, or it would re-read them). The script reports the median wall time of each,
their spread (min-max), the median CPU time (user + system) of each, and the ratio of the medians, and checks
that every printed number (the 7 global ones and each object's J-Mean and F-Mean) agrees to the last of its 6
decimals.

The toolkit is never committed: check it out into the git-ignored ``benchmarks/.official`` (see docs/evaluation.md);
it needs numpy, scikit-image, opencv, pandas, scipy, Pillow and tqdm, by default in this Python, else in the one
given by ``--official-python``. When it is absent or does not import, only ``ino`` is timed, with one message.

``--decoders`` adds a table of CPU milliseconds per mask for several PNG decoders on the same files (Pillow, OpenCV,
ino's direct reader with zlib's and with ISA-L's inflate, and pyspng when installed); ``--repeats 0 --decoders``
times only those.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ino.data.davis import DavisLayout, davis_palette, read_mask
from timed_process import ino_command, run_timed

HERE = Path(__file__).resolve().parent
OFFICIAL_SCRIPT = "evaluation_method.py"
OFFICIAL_IMPORTS = "import pandas, skimage.morphology, davis2017.evaluation"
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$")


def _perturbed(gt: np.ndarray, index: int) -> np.ndarray:
    """An imperfect prediction from the ground truth, so that every object has real boundaries to match."""
    kernel = np.ones((7, 7), np.uint8)
    kind = index % 3
    if kind == 0:
        pred = cv2.erode(gt, kernel)
    elif kind == 1:
        pred = cv2.dilate(gt, kernel)
    else:
        pred = np.zeros_like(gt)
        if index % 7 != 3:
            pred[:-5, 9:] = gt[5:, :-9]
    if index % 4 == 1:
        pred[4:24, 6:40] = max(int(gt.max()), 1)
    return pred


def _save_opencv(path: Path, ids: np.ndarray) -> None:
    cv2.imwrite(str(path), ids)


def _palette_saver(**options: object) -> Callable[[Path, np.ndarray], None]:
    def save(path: Path, ids: np.ndarray) -> None:
        image = Image.fromarray(ids, mode="P")
        image.putpalette(davis_palette().ravel().tolist())
        image.save(path, **options)

    return save


WRITERS: dict[str, Callable[[Path, np.ndarray], None]] = {
    "OpenCV imwrite (grayscale)": _save_opencv,
    "Pillow palette, compress_level=1": _palette_saver(compress_level=1),
    "Pillow palette, optimize=True": _palette_saver(optimize=True),
}


def _write_sets(davis_root: Path, work: Path, copies: int) -> dict[str, Path]:
    """One DAVIS-layout results folder per writer, every annotated frame of every sequence (and of its copies)."""
    layout = DavisLayout(davis_root)
    folders = {label: work / f"set{number}" for number, label in enumerate(WRITERS)}
    for name in layout.sequences():
        for folder in folders.values():
            (folder / name).mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(layout.annotation_frames(name)):
            pred = _perturbed(read_mask(layout.annotation_dir(name) / f"{frame}.png"), index)
            for label, save in WRITERS.items():
                save(folders[label] / name / f"{frame}.png", pred)
        for folder in folders.values():
            for copy in range(1, copies):
                (folder / f"{name}-copy{copy}").symlink_to(folder / name, target_is_directory=True)
    return folders


def _copied_root(davis_root: Path, work: Path, copies: int) -> Path:
    """The dev set with every sequence listed ``copies`` times (links to its frames and masks, new names), so that
    a run scores as many frame-objects as a full method's output (issue 21 measured 934) and start-up weighs what it
    weighs there."""
    if copies == 1:
        return davis_root
    layout, root = DavisLayout(davis_root), work / "davis-copies"
    names = []
    for name in layout.sequences():
        for copy in range(copies):
            copied = name if copy == 0 else f"{name}-copy{copy}"
            names.append(copied)
            for kind in ("JPEGImages", "Annotations"):
                (root / kind / "480p").mkdir(parents=True, exist_ok=True)
                (root / kind / "480p" / copied).symlink_to(davis_root / kind / "480p" / name, target_is_directory=True)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def _official_python(official: Path, given: str | None) -> str | None:
    """The Python that runs the toolkit, or None (after saying why) when there is none to run."""
    if not (official / OFFICIAL_SCRIPT).is_file():
        print(
            f"skipping the official toolkit: {official / OFFICIAL_SCRIPT} not found (check out "
            f"davisvideochallenge/davis2017-evaluation into {official}, git-ignored; see docs/evaluation.md)"
        )
        return None
    python = given or sys.executable
    check = subprocess.run([python, "-c", OFFICIAL_IMPORTS], cwd=official, capture_output=True, text=True)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        print(f"skipping the official toolkit: it does not import with {python} ({last}); pass --official-python")
        return None
    return python


def _printed_numbers(stdout: str) -> dict[str, str]:
    """The global row (by column name) and each object's J-Mean / F-Mean, as 6-decimal strings.

    Both programs print pandas-style tables; pandas drops trailing zeros, so every number is re-printed with 6
    decimals before comparing.
    """
    lines = stdout.splitlines()
    numbers: dict[str, str] = {}
    for row, line in enumerate(lines):
        words = line.split()
        if words[:1] == ["J&F-Mean"] and row + 1 < len(lines):
            numbers.update(zip(words, (f"{float(v):.6f}" for v in lines[row + 1].split()), strict=True))
        elif len(words) == 3 and "_" in words[0] and all(NUMBER.match(w) for w in words[1:]):
            numbers[f"{words[0]} J-Mean"] = f"{float(words[1]):.6f}"
            numbers[f"{words[0]} F-Mean"] = f"{float(words[2]):.6f}"
    return numbers


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def _compare(label: str, ours: dict[str, str], theirs: dict[str, str]) -> bool:
    differing = [key for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)]
    if differing or len(ours) < 7:
        print(
            f"  MISMATCH on {label}: "
            + "; ".join(f"{k}: ino {ours.get(k)} official {theirs.get(k)}" for k in differing)
        )
        return False
    print(f"  same printed numbers: all {len(ours)} agree to 6 decimals (J&F-Mean {ours['J&F-Mean']})")
    return True


def _bench_set(
    label: str, davis_root: Path, results: Path, out: Path, official: Path, python: str | None, repeats: int
) -> bool:
    ours = [*ino_command(), "evaluate", "--davis-root", str(davis_root), "--results", str(results)]
    ours += ["--out", str(out), "--quiet"]
    theirs = [python or "", OFFICIAL_SCRIPT, "--task", "semi-supervised", "--set", "val"]
    theirs += ["--davis_path", str(davis_root), "--results_path", str(results)]
    times: dict[str, list[tuple[float, float]]] = {"ino": [], "official": []}
    printed: dict[str, dict[str, str]] = {}

    def run_ours() -> None:
        wall, cpu, stdout = run_timed(ours)
        times["ino"].append((wall, cpu))
        printed["ino"] = _printed_numbers(stdout)

    def run_theirs() -> None:
        for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
            (results / name).unlink(missing_ok=True)
        wall, cpu, stdout = run_timed(theirs, cwd=official)
        times["official"].append((wall, cpu))
        printed["official"] = _printed_numbers(stdout)

    for repeat in range(repeats):
        order = [run_ours, run_theirs] if python else [run_ours]
        for run in order if repeat % 2 == 0 else order[::-1]:
            run()
    count = sum(len(DavisLayout(davis_root).annotation_frames(n)) - 2 for n in DavisLayout(davis_root).sequences())
    walls = {side: [w for w, _ in runs] for side, runs in times.items()}
    cpus = {side: statistics.median(c for _, c in runs) for side, runs in times.items() if runs}
    print(f"{label}: {count} frame-objects, {repeats} runs each, median wall (min-max), median CPU")
    print(f"  ino evaluate      {_spread(walls['ino'])}  CPU {cpus['ino']:.2f} s")
    if not python:
        return True
    print(f"  official toolkit  {_spread(walls['official'])}  CPU {cpus['official']:.2f} s")
    ratio = statistics.median(walls["official"]) / statistics.median(walls["ino"])
    print(f"  ratio of medians: {ratio:.1f}x wall, {cpus['official'] / cpus['ino']:.1f}x CPU")
    return _compare(label, printed["ino"], printed["official"])


def _decoders() -> dict[str, Callable[[Path], object]]:
    """Ways to read a mask PNG; only those marked "ids" return the ids of a palette PNG."""
    import zlib

    from ino.data import davis

    def direct(inflate: Callable[[bytes], bytes]) -> Callable[[Path], object]:
        def read(path: Path) -> object:
            saved, davis._inflate = davis._inflate, inflate
            try:
                return davis._decode_plain_png(path.read_bytes())
            finally:
                davis._inflate = saved

        return read

    decoders: dict[str, Callable[[Path], object]] = {
        "Pillow np.array(Image.open) (ids)": lambda path: np.array(Image.open(path)),
        "Pillow np.asarray(Image.open) (ids)": lambda path: np.asarray(Image.open(path)),
        "OpenCV imread UNCHANGED (palette: BGR colours)": lambda path: cv2.imread(str(path), cv2.IMREAD_UNCHANGED),
        "direct, zlib inflate (ids)": direct(zlib.decompress),
    }
    try:
        from isal.isal_zlib import decompress

        decoders["direct, ISA-L inflate (ids; ino's reader)"] = direct(decompress)
    except ImportError:
        print("isal not installed: no ISA-L row")
    try:
        import pyspng

        decoders["pyspng (palette: RGB colours)"] = lambda path: pyspng.load(path.read_bytes())
    except ImportError:
        print("pyspng not installed: no pyspng row (pip install pyspng to add it)")
    return decoders


def _time_decoders(sets: dict[str, Path], davis_root: Path, repeats: int) -> None:
    """CPU milliseconds per 854x480 mask of each decoder (best of ``repeats`` passes over 120 files of a set)."""
    sets = {"DAVIS ground truth (palette)": davis_root / "Annotations" / "480p", **sets}
    files = {label: sorted(folder.rglob("*.png"))[:120] for label, folder in sets.items()}
    print("\nCPU ms per mask (process time, one thread, best of the passes):")
    print(f"  {'decoder':<48}" + "".join(f"{label[:24]:>26}" for label in files))
    for name, decode in _decoders().items():
        cells = []
        for paths in files.values():
            best = math.inf
            for _ in range(repeats):
                started = time.process_time()
                for path in paths:
                    decode(path)
                best = min(best, time.process_time() - started)
            cells.append(f"{1000 * best / len(paths):26.3f}")
        print(f"  {name:<48}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis-dev", type=Path, default=HERE.parents[1] / "shared" / "data" / "davis-dev")
    parser.add_argument("--official", type=Path, default=HERE / ".official", help="davis2017-evaluation checkout")
    parser.add_argument("--official-python", default=None, help="Python with the toolkit's dependencies")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each program per set (0: none)")
    parser.add_argument("--work", type=Path, default=None, help="keep the generated sets here (default: a temp dir)")
    parser.add_argument("--decoders", action="store_true", help="also time PNG decoders on the same files")
    parser.add_argument("--copies", type=int, default=1, help="list each dev sequence this many times (3: 873)")
    args = parser.parse_args()
    if not (args.davis_dev / "Annotations").is_dir():
        raise SystemExit(f"{args.davis_dev}: no DAVIS-layout dev set (pass --davis-dev)")
    python = _official_python(args.official.resolve(), args.official_python)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"CPU cores: {os.cpu_count()}; load average before: {load}; ino: {' '.join(ino_command())} evaluate")
    with tempfile.TemporaryDirectory(prefix="ino-bench-eval-") as scratch:
        work = args.work or Path(scratch)
        agree = True
        sets = _write_sets(args.davis_dev.resolve(), work, args.copies)
        davis_root = _copied_root(args.davis_dev.resolve(), work, args.copies)
        for label, results in sets.items() if args.repeats > 0 else ():
            out = work / "ino-out" / results.name
            agree &= _bench_set(label, davis_root, results, out, args.official.resolve(), python, args.repeats)
        if args.decoders:
            _time_decoders(sets, args.davis_dev.resolve(), max(args.repeats, 3))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average after: {load}")
    if not agree:
        raise SystemExit("the printed numbers differ")


if __name__ == "__main__":
    main()
