"""How much of the demo's random-init vs trained gap is the feature grid? J&F of both, and of the grid ceiling.

Writes the synthetic benchmark of ``ino demo`` (6 x 20 frames, 320x180, seed 0) and, for each ``--short-sides``
entry, scores (a) the grid ceiling (:mod:`ino.propagation.grid_ceiling`: the ground truth itself through the feature
grid, what perfect correspondences would score), (b) the random-init backbone of the demo recipe and (c) the teacher
of every ``--checkpoints`` entry (demo runs, e.g. ``<out>/runs/ino/checkpoints/step-*.pt`` of ``ino demo``), with
the demo's protocol otherwise (block 6, top-k 5, first + 10 previous frames, radius 12); ``--brightness-drift``,
``--max-blur`` and ``--frame-noise`` add the generator's photometric changes; ``--davis-root DIR`` scores that
DAVIS-layout folder instead (first ``--max-frames`` frames, as ``ino demo --davis-root`` does). The "where the
synthetic gap goes" tables of docs/experiments.md were measured with it:

    OMP_NUM_THREADS=1 python benchmarks/demo_grid.py --out /tmp/demo-grid --short-sides 352,528 \
        --checkpoints demo-output/runs/ino/checkpoints/step-00000921.pt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ino.data.synthetic import write_benchmark
from ino.demo.run import (
    DemoConfig,
    propagation_config,
    random_backbone,
    score_backbone,
    score_ceiling,
    small_copies,
    training_config,
    training_videos,
)
from ino.models.weights import load_backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--short-sides", default="352,528")
    parser.add_argument("--checkpoints", nargs="*", default=[], help="demo checkpoints whose teacher is scored")
    parser.add_argument("--seed", type=int, default=0, help="benchmark seed and random-init seed")
    parser.add_argument("--brightness-drift", type=float, default=0.0, help="photometric changes, as for ino synth")
    parser.add_argument("--max-blur", type=float, default=0.0)
    parser.add_argument("--frame-noise", type=float, default=0.0)
    parser.add_argument("--davis-root", default=None, help="score this DAVIS-layout folder instead of the synthetic")
    parser.add_argument("--max-frames", type=int, default=30, help="with --davis-root: first N frames (demo: 30)")
    args = parser.parse_args()
    out = Path(args.out)
    settings = DemoConfig(seed=args.seed)
    root, max_frames = (Path(args.davis_root), args.max_frames) if args.davis_root else (out / "synth", None)
    if not args.davis_root:
        photometric = {"brightness_drift": args.brightness_drift, "max_blur": args.max_blur}
        frames = settings.synth_config(**photometric, frame_noise=args.frame_noise)
        write_benchmark(root, settings.synth_sequences, frames, settings.seed)
    videos = small_copies(training_videos(None), out / "clips", settings.train_short_side)
    recipe = training_config(videos, out / "run", out / "cache", args.seed, 1)
    scores: dict[str, dict[str, float]] = {}
    for side in (int(s) for s in args.short_sides.split(",")):
        protocol = propagation_config(settings, side, recipe.model.patch_size)
        row = scores.setdefault(str(side), {})
        ceiling = score_ceiling(root, out / f"ceiling-{side}", protocol, max_frames)
        row["grid ceiling"] = ceiling.global_scores["J&F-Mean"]
        print(f"short side {side}: grid ceiling J&F-Mean {row['grid ceiling']:.4f}", flush=True)
        backbones = {"random init": lambda: random_backbone(recipe)}
        for path in args.checkpoints:
            backbones[path] = lambda path=path: load_backbone(path, which="teacher", arch=recipe.model.arch)
        for label, build in backbones.items():
            started = time.perf_counter()
            scored, _ = score_backbone(build(), root, out / f"pred-{side}", protocol, max_frames)
            row[label] = scored.global_scores["J&F-Mean"]
            seconds = time.perf_counter() - started
            print(f"short side {side}: {label} J&F-Mean {row[label]:.4f} ({seconds:.0f} s)", flush=True)
    (out / "scores.json").write_text(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
