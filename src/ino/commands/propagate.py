"""``ino propagate``: segment through DAVIS, YouTube-VOS or any video by label propagation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jsonargparse import ArgumentParser, Namespace

from ino.errors import InoError

SUMMARY = "segment objects through videos by label propagation (DAVIS, YouTube-VOS, any video)"

#: protocol knobs exposed as options; None keeps the preset's value.
_OVERRIDES = {
    "topk": (int, "affinities kept per query, over all context frames jointly"),
    "n_last_frames": (int, "previous frames in the context, besides the first frame"),
    "radius": (int, "half side of the square neighbourhood window, in feature cells"),
    "temperature": (float, "affinity temperature"),
    "label_downsampling": (str, "first-frame label to the grid: bilinear (INO) or nearest (DINO)"),
    "feature_block": (int, "0-based transformer block whose output (through the final norm) is the feature"),
    "feature_dtype": (str, "float32, float16 or bfloat16 features (half precision: on CUDA)"),
    "chunk_size": (int, "query cells per affinity tile (memory vs speed; results do not change)"),
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        description="Propagate first-frame masks through videos with a ViT's patch features (INO protocol). "
        "Give exactly one of --davis-root, --ytvos-root or --video."
    )
    parser.add_argument("--davis-root", default=None, help="DAVIS-layout folder: writes <out>/<sequence>/*.png")
    parser.add_argument("--ytvos-root", default=None, help="YouTube-VOS split folder (valid/): writes Annotations.zip")
    parser.add_argument("--all-frames", default=None, help="YouTube-VOS valid_all_frames/ folder (every frame)")
    parser.add_argument("--video", default=None, help="a video file or a folder of frames")
    parser.add_argument("--mask", default=None, help="first-frame mask PNG for --video (0 = background)")
    parser.add_argument("--checkpoint", required=True, help="weights file (INO/DINO/timm/safetensors) or 'random'")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--preset", default=None, help="ino-davis (default), ino-ytvos (default for YouTube-VOS), dino-davis"
    )
    parser.add_argument("--which", default=None, help="checkpoint entry: student (INO default) or teacher")
    parser.add_argument("--arch", default=None, help="vit_tiny | vit_small | vit_base (inferred from files)")
    parser.add_argument("--patch-size", type=int, default=None, help="8 or 16 (inferred from files)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a random backbone")
    parser.add_argument("--set", default="val", help="DAVIS ImageSets/2017/<set>.txt")
    parser.add_argument("--resolution", default="480p", help="DAVIS resolution folder")
    parser.add_argument("--sequences", default=None, help="comma-separated DAVIS sequences / YouTube-VOS videos")
    parser.add_argument("--scale-size", type=int, default=None, help="short side in pixels; -1 = native size")
    parser.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each sequence")
    for name, (kind, text) in _OVERRIDES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=text)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when available)")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per backbone pass (default 8 GPU, 1 CPU)")
    parser.add_argument("--evaluate", action="store_true", help="score the DAVIS results with J&F afterwards")
    parser.add_argument("--workers", type=int, default=None, help="scoring threads (default: CPU count)")
    parser.add_argument("--fps", type=float, default=None, help="overlay video frame rate (default: the video's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _config(args: Namespace):  # type: ignore[no-untyped-def]
    from ino.video_propagation import resolve_config

    preset = args.preset or ("ino-ytvos" if args.ytvos_root else "ino-davis")
    overrides = {name: args[name] for name in _OVERRIDES if args[name] is not None}
    if args.which is not None:
        overrides["checkpoint_key"] = args.which
    if args.scale_size is not None:
        overrides["short_side"] = None if args.scale_size < 0 else args.scale_size
    return preset, resolve_config(preset, **overrides)


def _settings(args: Namespace, preset: str, config: object, source: str) -> dict[str, object]:
    """What a results folder depends on: the backbone (file identity included) and the protocol."""
    settings: dict[str, object] = {"backbone": source, "preset": preset, "config": dataclasses.asdict(config)}
    path = Path(args.checkpoint)
    if args.checkpoint != "random" and path.is_file():
        stat = path.stat()
        settings["checkpoint_file"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return settings


def run(args: Namespace) -> None:
    import torch

    from ino.features import FeatureExtractor, default_device
    from ino.propagation_jobs import propagate_davis, propagate_video_file, propagate_ytvos
    from ino.video_propagation import load_propagation_backbone

    modes = [name for name in ("davis_root", "ytvos_root", "video") if args[name]]
    if len(modes) != 1:
        raise InoError("give exactly one of --davis-root, --ytvos-root or --video")
    if args.video and not args.mask:
        raise InoError("--video needs --mask, the first frame's mask PNG")
    if args.evaluate and not args.davis_root:
        raise InoError("--evaluate scores DAVIS results; YouTube-VOS is scored by its evaluation server")
    if args.max_frames is not None and args.max_frames < 1:
        raise InoError(f"--max-frames must be >= 1, got {args.max_frames}")
    preset, config = _config(args)
    model = load_propagation_backbone(
        "random" if args.checkpoint == "random" else args.checkpoint,
        config,
        arch=args.arch,
        patch_size=args.patch_size,
        seed=args.seed,
    )
    device = torch.device(args.device) if args.device else default_device()
    batch_size = args.batch_size or (8 if device.type == "cuda" else 1)
    extractor = FeatureExtractor(model, config, device=device, batch_size=batch_size)
    settings = _settings(args, preset, config, model.source)
    progress = not args.quiet
    sequences = [s for s in args.sequences.split(",") if s] if args.sequences else None
    print(f"backbone {model.source} ({model.arch}/{model.patch_size}), preset {preset}, device {device}")
    out = Path(args.out)
    if args.video:
        paths = propagate_video_file(
            args.video, args.mask, out, extractor, max_frames=args.max_frames, fps=args.fps, progress=progress
        )
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    elif args.ytvos_root:
        archive = propagate_ytvos(
            args.ytvos_root, out, extractor, settings, all_frames=args.all_frames, videos=sequences, progress=progress
        )
        print(f"wrote {out / 'Annotations'} and {archive}")
    else:
        names = propagate_davis(
            args.davis_root,
            out,
            extractor,
            settings,
            set_name=args.set,
            resolution=args.resolution,
            sequences=sequences,
            max_frames=args.max_frames,
            progress=progress,
        )
        print(f"wrote {len(names)} sequence(s) to {out}")
        if args.evaluate:
            _evaluate(args, names)


def _evaluate(args: Namespace, names: list[str]) -> None:
    from ino.evaluate import evaluate
    from ino.evaluation_report import print_and_write

    evaluation = evaluate(
        args.davis_root,
        args.out,
        set_name=args.set,
        resolution=args.resolution,
        workers=args.workers,
        sequences=names,
        progress=not args.quiet,
        max_frames=args.max_frames,
    )
    print_and_write(evaluation, args.out, args.set)
