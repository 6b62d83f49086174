"""``ino train``: INO self-supervised training on a folder, glob or CSV list of videos."""

from __future__ import annotations

import os

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

SUMMARY = "train a ViT with INO on unlabeled videos (one process, or many under torchrun)"


def _groups() -> dict[str, type]:
    from ino.config import ClipConfig, LossConfig, MaskConfig, ModelConfig, MultiCropConfig, OptimConfig, RunConfig

    return {
        "clips": ClipConfig,
        "augment": MultiCropConfig,
        "model": ModelConfig,
        "masking": MaskConfig,
        "loss": LossConfig,
        "optim": OptimConfig,
        "run": RunConfig,
    }


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        description="Train INO. Settings come from the defaults (the authors' Charades run), then --config YAML "
        "files (configs/*.yaml), then dotted overrides such as --optim.base_lr 1e-3 --loss.w_aff 0. Restarting the "
        "same command resumes from the newest checkpoint in --output-dir."
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML preset, e.g. configs/ino-charades.yaml")
    parser.add_argument("--data", nargs="+", default=[], help="video folders, globs or CSV/TXT lists")
    parser.add_argument("--output_dir", "--output-dir", default="runs/ino", help="run folder (checkpoints, logs)")
    parser.add_argument("--max_steps", "--max-steps", type=int | None, default=None, help="stop after N steps")
    parser.add_argument("--device", type=str | None, default=None, help="cuda, cpu (default: CUDA when available)")
    parser.add_argument("--quiet", type=bool, default=False, help="no progress bar")
    for name, cls in _groups().items():
        parser.add_class_arguments(cls, name, fail_untyped=False, sub_configs=True)
    return parser


def run(args: Namespace) -> None:
    from ino.config import from_dict
    from ino.train import train

    data = {name: args[name].as_dict() for name in _groups()}
    data["data"] = list(args.data)
    data["output_dir"] = args.output_dir
    config = from_dict(data, "ino train")
    if args.max_steps is not None:
        config.run.max_steps = args.max_steps
    result = train(config, progress=not args.quiet, device=args.device)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes checkpoints
        print(f"stopped at step {result.step}; newest checkpoint: {result.checkpoint}")
