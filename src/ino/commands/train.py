"""``ino train``: INO self-supervised training on a folder, glob or CSV list of videos."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

import yaml

from ino.configs.schema import GROUPS

SUMMARY = "train a ViT with INO on unlabeled videos (one process, or many under torchrun)"
DESCRIPTION = (
    "Train INO (docs/training.md). Settings come from the defaults (the authors' Charades run), then each --config "
    "in order (a preset name such as ino-charades or ablations/loss-out-mim, or a YAML path), then dotted "
    "overrides such as --optim.base-lr 1e-3 --loss.w-aff 0. Restarting the same command resumes from the newest "
    "checkpoint in --output-dir."
)


def _value(kind: Any) -> Any:
    """An argparse type for a setting of type ``kind``: YAML syntax for lists and null (``[0.1, 0.5]``, ``null``)."""
    optional = type(None) in typing.get_args(kind)

    def parse(text: str) -> Any:
        if optional and text.lower() in ("null", "none"):
            return None
        if kind is str or (optional and str in typing.get_args(kind)):
            return text
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise argparse.ArgumentTypeError(f"cannot read {text!r}") from None

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", action="append", default=[], help="preset name or YAML file; repeat to stack (later wins)"
    )
    parser.add_argument("--data", nargs="+", default=None, help="video folders, globs or CSV/TXT lists")
    parser.add_argument("--output-dir", default=None, help="run folder: checkpoints, logs (default runs/ino)")
    parser.add_argument("--device", default=None, help="cuda, cpu (default: CUDA when available)")
    for group, cls in GROUPS.items():
        section = parser.add_argument_group(f"{group} settings")
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            choices = spec.metadata.get("choices")
            section.add_argument(
                f"--{group}.{spec.name.replace('_', '-')}",
                dest=f"{group}.{spec.name}",
                type=_value(hints[spec.name]),
                choices=choices,
                default=argparse.SUPPRESS,
                metavar=spec.name.upper() if not choices else None,
                help=f"default {spec.default!r}",
            )


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted options given on the command line as nested settings."""
    nested: dict[str, Any] = {}
    for key, value in vars(args).items():
        group, dot, name = key.partition(".")
        if dot and group in GROUPS:
            nested.setdefault(group, {})[name] = value
    if args.data is not None:
        nested["data"] = list(args.data)
    if args.output_dir is not None:
        nested["output_dir"] = args.output_dir
    return nested


def run(args: argparse.Namespace) -> None:
    import os

    from ino.configs.loading import load_config
    from ino.training.loop import train

    config = load_config(args.config, overrides(args))
    result = train(config, progress=not args.quiet, device=args.device)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes checkpoints
        print(f"stopped at step {result.step}; newest checkpoint: {result.checkpoint}")
