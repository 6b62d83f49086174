"""Training logs: one JSON line per step (always), TensorBoard scalars (when installed), tqdm on rank 0.

The JSONL file is the record a run is judged by (loss terms, lr, weight decay, teacher momentum, teacher
entropy, clips/s, fraction of time waiting for data); it is appended to, so a resumed run continues it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm


class TrainLog:
    """Writes step records on the main rank; other ranks get a no-op logger."""

    def __init__(self, run_dir: Path, enabled: bool, total_steps: int, start_step: int, progress: bool) -> None:
        self.enabled = enabled
        self._jsonl = None
        self._tensorboard: Any = None
        self._bar = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (run_dir / "log.jsonl").open("a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            self._tensorboard = None
        self._bar = tqdm(total=total_steps, initial=start_step, unit="step", desc="train", disable=not progress)

    def step(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.record(record)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)

    def record(self, record: dict[str, Any]) -> None:
        """A non-step record (e.g. an evaluation) in the JSONL file and TensorBoard."""
        if not self.enabled:
            return
        assert self._jsonl is not None
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tensorboard.add_scalar(key, value, record["step"])

    def event(self, message: str) -> None:
        """A line for the user (checkpoints, evaluations), kept clear of the progress bar."""
        if self.enabled:
            tqdm.write(message)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The step records of a run, in order."""
    path = Path(run_dir) / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
