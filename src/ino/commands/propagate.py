"""``ino propagate``: segment through DAVIS, YouTube-VOS or any video by label propagation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ino.commands._args import any_int, boolean, comma_list, non_negative_int, positive_float, positive_int
from ino.configs.schema import PATCH_SIZES, VIT_ARCHS
from ino.errors import InoError
from ino.propagation.presets import (
    CHECKPOINT_KEYS,
    FEATURE_DTYPES,
    LABEL_DOWNSAMPLING,
    PRESETS,
    TOPK_TIES,
    WINDOWS,
    PropagationConfig,
)

if TYPE_CHECKING:
    import torch

    from ino.propagation.api import VideoPropagator
    from ino.utils.distributed import Distributed

SUMMARY = "propagate masks, keypoints or part labels through videos (DAVIS, YouTube-VOS, JHMDB, VIP, any video)"
DESCRIPTION = (
    "Propagate first-frame labels through videos with a ViT's patch features (docs/propagation.md): object masks "
    "(DAVIS, YouTube-VOS, a video), JHMDB joints, VIP part classes. Give exactly one of --davis-root, --ytvos-root, "
    "--jhmdb-root, --vip-root or --video. Under torchrun (--nproc-per-node N) the sequences are split over the "
    "ranks, one device each; rank 0 merges the run state and runs --evaluate."
)
#: each mode's option and default preset (cropmae-jhmdb / cropmae-vip: CropMAE's JHMDB and VIP protocols)
MODES = {
    "davis_root": "ino-davis",
    "ytvos_root": "ino-ytvos",
    "jhmdb_root": "cropmae-jhmdb",
    "vip_root": "cropmae-vip",
    "video": "ino-davis",
}

#: protocol knobs exposed as options: (type, choices, help); None keeps the preset's value
_OVERRIDES = {
    "topk": (positive_int, None, "affinities kept per query, over all context frames jointly"),
    "n_last_frames": (non_negative_int, None, "previous frames in the context, besides the first frame"),
    "radius": (non_negative_int, None, "neighbourhood window radius, in feature cells (see --window)"),
    "window": (str, WINDOWS, "square: both offsets <= radius (INO, DINO); disk: distance < radius (CRW, CropMAE)"),
    "window_first_frame": (boolean, None, "true: the window also restricts the first frame (INO); false: CRW"),
    "pad_context": (boolean, None, "true: early frames' context padded with copies of the first frame (CRW)"),
    "topk_ties": (str, TOPK_TIES, "keep: every affinity tied with the k-th survives (DINO); exact: k (CRW)"),
    "temperature": (positive_float, None, "affinity temperature"),
    "label_downsampling": (str, LABEL_DOWNSAMPLING, "first-frame label to the grid: bilinear (INO), nearest (DINO)"),
    "feature_block": (any_int, None, "0-based block whose output (+ final norm) is the feature; -1: the last"),
    "feature_dtype": (
        str,
        FEATURE_DTYPES,
        "backbone and feature precision (default: bfloat16 on a CPU with native bf16, avx512_bf16/amx_bf16/bf16 in "
        "/proc/cpuinfo; float32 elsewhere, and float32 forces it)",
    ),
    "chunk_size": (positive_int, None, "query cells per affinity tile (memory vs speed; results do not change)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--davis-root", default=None, help="DAVIS-layout folder: writes <out>/<sequence>/*.png")
    parser.add_argument("--ytvos-root", default=None, help="YouTube-VOS split folder (valid/): writes Annotations.zip")
    parser.add_argument("--all-frames", default=None, help="YouTube-VOS valid_all_frames/ folder (every frame)")
    parser.add_argument("--jhmdb-root", default=None, help="JHMDB folder: writes <out>/<action>/<video>.json joints")
    parser.add_argument("--vip-root", default=None, help="VIP_Fine folder: writes <out>/<video>/<frame>.png class ids")
    parser.add_argument("--video", default=None, help="a video file or a folder of frames")
    parser.add_argument("--mask", default=None, help="first-frame mask PNG for --video (0 = background)")
    parser.add_argument("--checkpoint", required=True, help="weights file (INO/DINO/timm/safetensors) or 'random'")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="default: ino-davis; ino-ytvos for YouTube-VOS, cropmae-jhmdb for JHMDB, cropmae-vip for VIP",
    )
    parser.add_argument("--which", choices=CHECKPOINT_KEYS, default=None, help="checkpoint entry (INO: student)")
    parser.add_argument(
        "--arch",
        default=None,
        help=f"ours ({', '.join(VIT_ARCHS)}; inferred from weight files) or a timm ViT name, e.g. "
        "vit_small_patch14_reg4_dinov2 or vit_small_patch16_dinov3 (docs/propagation.md#backbones)",
    )
    parser.add_argument(
        "--patch-size",
        type=int,
        choices=PATCH_SIZES,
        default=None,
        help="our ViT: inferred from files; a timm name fixes it",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of a random backbone")
    parser.add_argument("--set", default="val", help="DAVIS ImageSets/2017/<set>.txt; VIP lists/<set>_videos.txt")
    parser.add_argument("--list", default=None, help="JHMDB or VIP video list file (JHMDB default: every video)")
    parser.add_argument("--resolution", default="480p", help="DAVIS resolution folder")
    parser.add_argument("--sequences", type=comma_list, default=None, help="comma-separated sequences / videos")
    parser.add_argument(
        "--scale-size",
        type=int,
        default=None,
        help="short side in pixels (floored to the patch multiple); -1 = native size",
    )
    parser.add_argument("--max-frames", type=positive_int, default=None, help="only the first N frames of each")
    for name, (kind, choices, text) in _OVERRIDES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, choices=choices, default=None, help=text)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when available)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="frames per backbone pass (8 GPU, 1 CPU)")
    parser.add_argument("--keypoint-topk", type=positive_int, default=None, help="JHMDB decode top-k (crw 3, else 5)")
    parser.add_argument(
        "--keypoint-sigma", type=positive_float, default=None, help="JHMDB joint Gaussian sigma in grid cells (0.5)"
    )
    parser.add_argument("--no-overlay", action="store_true", help="JHMDB: no per-video skeleton contact sheet")
    parser.add_argument("--evaluate", action="store_true", help="score afterwards: DAVIS J&F, JHMDB PCK or VIP mIoU")
    parser.add_argument("--workers", type=positive_int, default=None, help="scoring threads (default: CPU count)")
    parser.add_argument("--fps", type=positive_float, default=None, help="overlay video frame rate (default: video's)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="--video: replace overlay.mp4 and contact_sheet.png in --out even if ino did not write them",
    )


def _config(args: argparse.Namespace, device: torch.device) -> tuple[str, PropagationConfig]:
    from ino.propagation.presets import resolve_config
    from ino.utils.hardware import cpu_has_native_bf16

    preset = args.preset or next(MODES[mode] for mode in MODES if getattr(args, mode))
    overrides: dict[str, object] = {name: getattr(args, name) for name in _OVERRIDES if getattr(args, name) is not None}
    if args.feature_dtype is None and device.type == "cpu" and cpu_has_native_bf16():
        overrides["feature_dtype"] = "bfloat16"  # same J&F within 0.005 on davis-dev, faster (docs/propagation.md)
    if args.which is not None:
        overrides["checkpoint_key"] = args.which
    if args.scale_size is not None:
        if args.scale_size == 0 or args.scale_size < -1:
            raise InoError(
                f"--scale-size must be a short side in pixels or -1 for the native size, got {args.scale_size}"
            )
        overrides["short_side"] = None if args.scale_size == -1 else args.scale_size
    return preset, resolve_config(preset, **overrides)


def _check_scale_size(args: argparse.Namespace, patch_size: int) -> None:
    """Sizes are floored to the patch multiple (docs/propagation.md#backbones), so only a short side below one
    patch is refused; it can only be checked once the backbone, and with it the patch size, is known."""
    if args.scale_size is not None and 0 < args.scale_size < patch_size:
        raise InoError(
            f"--scale-size {args.scale_size} is smaller than the backbone's patch size {patch_size}: give at least "
            f"{patch_size}, or -1 for the native size"
        )


def run(args: argparse.Namespace) -> None:
    from ino.propagation.run_state import WAIT_FOR_RANKS
    from ino.utils import distributed
    from ino.utils.distributed import world_size_from_environment

    modes = [name for name in MODES if getattr(args, name)]
    if len(modes) != 1:
        raise InoError("give exactly one of --davis-root, --ytvos-root, --jhmdb-root, --vip-root or --video")
    if args.video and not args.mask:
        raise InoError("--video needs --mask, the first frame's mask PNG")
    if args.video and world_size_from_environment() > 1:
        raise InoError("--video propagates one video, frame after frame: run it without torchrun")
    if args.evaluate and (args.ytvos_root or args.video):
        raise InoError("--evaluate scores DAVIS, JHMDB or VIP results; YouTube-VOS is scored by its evaluation server")
    if args.list and not (args.jhmdb_root or args.vip_root):
        raise InoError("--list belongs to --jhmdb-root or --vip-root (DAVIS: --set, --sequences)")
    keypoint_options = [args.keypoint_topk, args.keypoint_sigma, args.no_overlay or None]
    if any(option is not None for option in keypoint_options) and not args.jhmdb_root:
        raise InoError("--keypoint-topk, --keypoint-sigma and --no-overlay belong to --jhmdb-root")
    if args.arch is not None and args.arch not in VIT_ARCHS:
        from ino.models.timm_backbone import check_timm_arch

        check_timm_arch(args.arch)
    dist = distributed.setup(args.device, timeout=WAIT_FOR_RANKS)
    try:
        _run(args, dist)
    finally:
        distributed.cleanup()


def _run(args: argparse.Namespace, dist: Distributed) -> None:
    from ino.data.davis import YtvosLayout
    from ino.propagation.api import VideoPropagator, load_propagation_backbone
    from ino.propagation.presets import for_patch_size
    from ino.propagation.run_state import run_settings
    from ino.propagation.runs import propagate_davis, propagate_video_file, propagate_ytvos

    preset, config = _config(args, dist.device)
    model = load_propagation_backbone(
        args.checkpoint, config, arch=args.arch, patch_size=args.patch_size, seed=args.seed
    )
    _check_scale_size(args, model.patch_size)
    config = for_patch_size(config, model.patch_size)  # e.g. a ViT/16 trained with the tiny preset
    device = dist.device
    batch_size = args.batch_size or (8 if device.type == "cuda" else 1)
    propagator = VideoPropagator(model, config, device=device, batch_size=batch_size)
    settings = run_settings(model, args.checkpoint, preset, config)
    progress = not args.quiet
    main = dist.is_main
    if main:
        ranks = f", {dist.world_size} ranks" if dist.enabled else ""
        print(
            f"backbone {model.source} ({model.arch}/{model.patch_size}), preset {preset}, "
            f"features {config.feature_dtype}, device {device}{ranks}"
        )
    out = Path(args.out)
    if args.video:
        paths = propagate_video_file(
            args.video,
            args.mask,
            out,
            propagator,
            settings=settings,
            max_frames=args.max_frames,
            fps=args.fps,
            overwrite=args.overwrite,
            progress=progress,
        )
        print("results: " + ", ".join(str(p) for p in paths.values()))  # also when an identical run was skipped
    elif args.ytvos_root:
        layout = YtvosLayout(args.ytvos_root, args.all_frames)
        archive = propagate_ytvos(
            layout, out, propagator, settings, videos=args.sequences, progress=progress, dist=dist
        )
        if main:
            print(f"wrote {out / 'Annotations'} and {archive}")
    elif args.jhmdb_root or args.vip_root:
        _run_parts_or_keypoints(args, propagator, settings, preset, dist)
    else:
        names = propagate_davis(
            args.davis_root,
            out,
            propagator,
            settings,
            set_name=args.set,
            resolution=args.resolution,
            sequences=args.sequences,
            max_frames=args.max_frames,
            progress=progress,
            dist=dist,
        )
        if main:
            print(f"wrote {len(names)} sequence(s) to {out}")
        if args.evaluate and main:
            _evaluate(args, names)


def _evaluate(args: argparse.Namespace, names: list[str]) -> None:
    from ino.commands.evaluate import print_and_write
    from ino.evaluation.scorer import evaluate

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


def _run_parts_or_keypoints(
    args: argparse.Namespace, propagator: VideoPropagator, settings: dict[str, object], preset: str, dist: Distributed
) -> None:
    """JHMDB keypoints or VIP parts: propagate (this rank's share), then rank 0 reports and, with --evaluate,
    scores the run's videos."""
    common = {"videos": args.sequences, "max_frames": args.max_frames, "progress": not args.quiet, "dist": dist}
    if args.jhmdb_root:
        from ino.propagation.keypoint_runs import keypoint_spec, propagate_jhmdb

        spec = keypoint_spec(preset, topk=args.keypoint_topk, sigma=args.keypoint_sigma)
        names = propagate_jhmdb(args.jhmdb_root, args.out, propagator, settings, list_file=args.list,
                                keypoints=spec, overlay=not args.no_overlay, **common)  # fmt: skip
    else:
        from ino.propagation.part_runs import propagate_vip

        names = propagate_vip(args.vip_root, args.out, propagator, settings, set_name=args.set, list_file=args.list,
                              **common)  # fmt: skip
    if not dist.is_main:
        return
    print(f"wrote {len(names)} video(s) to {args.out}")
    if not args.evaluate:
        return
    if args.jhmdb_root:
        from ino.commands.evaluate import print_and_write_pck
        from ino.evaluation.pck import evaluate_pck

        print_and_write_pck(evaluate_pck(args.jhmdb_root, args.out, videos=names, max_frames=args.max_frames), args.out)
    else:
        from ino.commands.evaluate import print_and_write_vip
        from ino.evaluation.vip import evaluate_vip

        evaluation = evaluate_vip(args.vip_root, args.out, set_name=args.set, videos=names, workers=args.workers,
                                  progress=not args.quiet, max_frames=args.max_frames)  # fmt: skip
        print_and_write_vip(evaluation, args.out, args.set)
