"""The state one GPU-proof run shares between its phases (:class:`Run`), the environment it records, and the
atomic writer of its two files."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import parts, report
from .inputs import REPO, Inputs


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
