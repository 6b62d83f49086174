"""Run by tests/training/test_loop.py under ``torch.distributed.run``: train, then dump this rank's teacher and centres.

Also records which clips this rank loaded, to check that the ranks shard an epoch without overlap.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

import ino.training.meta_arch
from ino.configs.loading import load_config
from ino.data.clips import ClipDataset
from ino.training.loop import train
from ino.training.losses import InoLoss

captured: dict[str, object] = {"clips": []}


class RecordingLoss(InoLoss):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        captured["loss"] = self


def recording_ema(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    captured["teacher"] = teacher
    original_ema(teacher, student, momentum)


original_ema = ino.training.meta_arch.ema_update
original_getitem = ClipDataset.__getitem__


def recording_getitem(self: ClipDataset, item: tuple[int, int, int]) -> object:
    captured["clips"].append(int(item[2]))  # type: ignore[union-attr]
    return original_getitem(self, item)


def main() -> None:
    preset, data, out, steps = sys.argv[1:5]
    ino.training.meta_arch.InoLoss = RecordingLoss  # type: ignore[misc]
    ino.training.meta_arch.ema_update = recording_ema
    ClipDataset.__getitem__ = recording_getitem  # type: ignore[method-assign]
    config = load_config([preset])
    config.data, config.output_dir = [data], out
    config.run.max_steps = int(steps)
    config.run.deterministic = True
    train(config, progress=False, device="cpu")
    rank = int(os.environ["RANK"])
    state = {
        "teacher": captured["teacher"].state_dict(),  # type: ignore[union-attr]
        "loss": captured["loss"].state_dict(),  # type: ignore[union-attr]
        "clips": captured["clips"],
    }
    torch.save(state, Path(out) / f"rank{rank}.pt")
    if rank == 0:
        (Path(out) / "summary.json").write_text(json.dumps({"world_size": int(os.environ["WORLD_SIZE"])}))


if __name__ == "__main__":
    main()
