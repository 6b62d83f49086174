"""``ino suite``: the label-propagation table (DAVIS, JHMDB, VIP, YouTube-VOS) for one or several models."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ino.commands._args import non_negative_int, positive_int
from ino.configs.schema import PATCH_SIZES, VIT_ARCHS
from ino.errors import InoError
from ino.propagation.presets import CHECKPOINT_KEYS, FEATURE_DTYPES, PRESETS
from ino.suite.tasks import PROTOCOLS, TASKS

if TYPE_CHECKING:
    from ino.suite.run import ModelSpec, TaskSpec
    from ino.utils.distributed import Distributed

SUMMARY = "the label-propagation table: every task given, for one or several models"
DESCRIPTION = (
    "Propagate and score each task given (--davis-root, --jhmdb-root, --vip-root, --ytvos-root) with its preset "
    "for each --checkpoint, into <out>/<model>/<task>/, and write one table: <out>/suite.md, suite.json and "
    "suite.html (per-task charts, protocol cards, published numbers as quoted context rows). Rerunning the same "
    "command resumes task by task and sequence by sequence. Under torchrun the sequences of each task are split "
    "over the ranks; rank 0 scores and writes the table (docs/evaluation.md, 'The whole table')."
)
#: per-model options: one value for every model, or one per --checkpoint in the same order
PER_MODEL = ("name", "arch", "which", "patch_size", "seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    models = parser.add_argument_group("models (per-model options: once for all, or once per --checkpoint, in order)")
    models.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="weights file (INO/DINO/timm/safetensors) or 'random'; repeat to compare models",
    )
    models.add_argument("--name", action="append", help="the model's name in the table and its folder")
    models.add_argument(
        "--arch",
        action="append",
        help=f"ours ({', '.join(VIT_ARCHS)}; inferred from weight files) or a timm ViT name, e.g. "
        "vit_small_patch14_reg4_dinov2 (docs/propagation.md#backbones)",
    )
    models.add_argument("--which", action="append", choices=CHECKPOINT_KEYS, help="checkpoint entry")
    models.add_argument("--patch-size", action="append", type=int, choices=PATCH_SIZES, help="inferred from files")
    models.add_argument("--seed", action="append", type=non_negative_int, help="seed of a random backbone (0)")
    tasks = parser.add_argument_group("tasks (at least one root)")
    tasks.add_argument(
        "--protocol",
        choices=tuple(PROTOCOLS),
        default="ino",
        help="the presets of every task: "
        + "; ".join(f"{family}: {', '.join(presets.values())}" for family, presets in PROTOCOLS.items()),
    )
    for name, task in TASKS.items():
        tasks.add_argument(f"--{name}-root", default=None, help=f"{task.title} root")
        tasks.add_argument(f"--{name}-preset", choices=sorted(PRESETS), default=None, help="default: --protocol's")
    tasks.add_argument("--all-frames", default=None, help="YouTube-VOS valid_all_frames/ folder (every frame)")
    tasks.add_argument("--jhmdb-list", default=None, help="JHMDB video list, e.g. the split-1 test list (default: all)")
    parser.add_argument("--scale-size", type=int, default=None, help="short side for every task; -1 = native size")
    parser.add_argument(
        "--feature-dtype",
        choices=FEATURE_DTYPES,
        default=None,
        help="default: bfloat16 on a CPU with native bf16, else float32",
    )
    parser.add_argument(
        "--max-frames",
        type=positive_int,
        default=None,
        help="quick check: each sequence's first N frames (DAVIS, JHMDB, VIP); marked in the table",
    )
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when available)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="frames per backbone pass (8 GPU, 1 CPU)")
    parser.add_argument("--out", required=True, help="output folder: <out>/<model>/<task>/ and the table")


def _per_model(args: argparse.Namespace, option: str, count: int) -> list[object]:
    values = getattr(args, option)
    if values is None:
        return [None] * count
    if len(values) == 1 and option != "name":
        return values * count
    if len(values) != count:
        flag = f"--{option.replace('_', '-')}"
        raise InoError(
            f"{flag} is given {len(values)} time(s) for {count} --checkpoint: give it once per --checkpoint"
            + ("" if option == "name" else ", or once for every model")
        )
    return values


def _default_name(checkpoint: str, arch: object, seed: object) -> str:
    """The file's stem (characters a folder name should not hold become '-'), or ``random[-arch][-seedN]``."""
    if checkpoint == "random":
        return "-".join(["random", *([str(arch)] if arch else []), *([f"seed{seed}"] if seed else [])])
    return re.sub(r"[^A-Za-z0-9._+-]", "-", Path(checkpoint).stem).lstrip("._+-") or "model"


def _models(args: argparse.Namespace) -> list[ModelSpec]:
    from ino.suite.run import ModelSpec

    count = len(args.checkpoint)
    per = {option: _per_model(args, option, count) for option in PER_MODEL}
    return [
        ModelSpec(
            checkpoint=checkpoint,
            name=str(per["name"][i] or _default_name(checkpoint, per["arch"][i], per["seed"][i])),
            arch=per["arch"][i],  # type: ignore[arg-type]
            which=per["which"][i],  # type: ignore[arg-type]
            patch_size=per["patch_size"][i],  # type: ignore[arg-type]
            seed=int(per["seed"][i] or 0),  # type: ignore[arg-type]
        )
        for i, checkpoint in enumerate(args.checkpoint)
    ]


def _tasks(args: argparse.Namespace) -> list[TaskSpec]:
    from ino.suite.run import TaskSpec

    if args.all_frames and not args.ytvos_root:
        raise InoError("--all-frames belongs to --ytvos-root")
    if args.jhmdb_list and not args.jhmdb_root:
        raise InoError("--jhmdb-list belongs to --jhmdb-root")
    specs = []
    for name in TASKS:
        root = getattr(args, f"{name}_root")
        if root:
            ytvos_frames = name == "ytvos" and args.all_frames
            options = {"all_frames": str(Path(args.all_frames).resolve())} if ytvos_frames else {}
            if name == "jhmdb" and args.jhmdb_list:
                options = {"list_file": str(Path(args.jhmdb_list).resolve())}
            preset = getattr(args, f"{name}_preset") or PROTOCOLS[args.protocol][name]
            specs.append(TaskSpec(name, root, preset, options))
    return specs


def command_line(args: argparse.Namespace) -> str:
    """The command as given, rebuilt from the parsed options (recorded in the table)."""
    parts = ["ino", "suite"]
    for dest, value in vars(args).items():
        flag = f"--{dest.replace('_', '-')}"
        if dest == "command" or value is None or value is False:
            continue
        if value is True:
            parts.append(flag)
        else:
            for item in value if isinstance(value, list) else [value]:
                parts += [flag, str(item)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> None:
    from ino.propagation.run_state import WAIT_FOR_RANKS
    from ino.utils import distributed

    models, tasks = _models(args), _tasks(args)
    dist = distributed.setup(args.device, timeout=WAIT_FOR_RANKS)
    try:
        _run(args, models, tasks, dist)
    finally:
        distributed.cleanup()


def _run(args: argparse.Namespace, models: list[ModelSpec], tasks: list[TaskSpec], dist: Distributed) -> None:
    import json

    from ino.suite.report import render_markdown
    from ino.suite.run import run_suite
    from ino.utils.hardware import cpu_has_native_bf16

    overrides: dict[str, object] = {}
    if args.scale_size is not None:
        overrides["short_side"] = None if args.scale_size < 0 else args.scale_size
    if args.feature_dtype is not None:
        overrides["feature_dtype"] = args.feature_dtype
    elif dist.device.type == "cpu" and cpu_has_native_bf16():
        overrides["feature_dtype"] = "bfloat16"  # as ino propagate; the card lists it as changed from the preset
    if dist.is_main:
        ranks = f", {dist.world_size} ranks" if dist.enabled else ""
        print(f"{len(models)} model(s) x {len(tasks)} task(s), device {dist.device}{ranks}, into {args.out}")
    paths = run_suite(
        models,
        tasks,
        args.out,
        overrides=overrides,
        max_frames=args.max_frames,
        batch_size=args.batch_size or (8 if dist.device.type == "cuda" else 1),
        progress=not args.quiet,
        command=command_line(args),
        dist=dist,
    )
    if dist.is_main:
        print(render_markdown(json.loads(paths["json"].read_text()), overview_only=True))
        print("wrote " + ", ".join(str(p) for p in paths.values()))
