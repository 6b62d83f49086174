"""Training logs: a JSON line every ``run.log_every`` steps (always), TensorBoard scalars (when installed), tqdm.

A line holds the averages over its window of steps: each loss term, teacher entropy, clips/s and the fraction of
time spent waiting for data; ``mim`` and ``aff`` average the masked steps only (absent when the window had none),
``masked`` counts them, ``steps`` is the window's length, ``step`` its last step, and lr, weight decay and teacher
momentum are the last step's. With ``log_every: 1`` every step is a line of its own (``masked`` is then 0 or 1).
The JSONL file is the record a run is judged by. A checkpoint flushes the current window first, and a resumed run
drops the lines of steps after its checkpoint (an interrupted run logged them) before appending: every step is in
the log once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ino.utils.atomic import atomic_write_text

#: the terms that exist in masked steps only
MASKED_TERMS = ("mim", "aff")
#: the last step's value stands for the window (schedules), rather than the mean
LAST_VALUE = ("step", "epoch", "lr", "wd", "momentum")


def average(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One line for a window of step records (see the module docstring)."""
    masked = [r for r in records if r["masked"]]
    line: dict[str, Any] = {key: records[-1][key] for key in LAST_VALUE}
    line["steps"], line["masked"] = len(records), len(masked)
    for key, value in records[-1].items():
        if key in LAST_VALUE or key == "masked" or not isinstance(value, (int, float)):
            continue
        rows = masked if key in MASKED_TERMS else records
        if rows:
            line[key] = sum(r[key] for r in rows) / len(rows)
    return line


class TrainLog:
    """Writes step records on the main rank; other ranks get a no-op logger."""

    def __init__(
        self, run_dir: Path, enabled: bool, total_steps: int, start_step: int, every: int, progress: bool
    ) -> None:
        self.enabled, self.every = enabled, every
        self._window: list[dict[str, Any]] = []
        self._jsonl = None
        self._tensorboard: Any = None
        self._bar = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "log.jsonl"
        # step windows name their last step's index; other lines (evaluations) the number of steps done
        kept = [line for line in read_log(run_dir) if line["step"] < start_step + ("steps" not in line)]
        if path.exists():
            atomic_write_text(path, "".join(json.dumps(line) + "\n" for line in kept))
        self._jsonl = path.open("a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            self._tensorboard = None
        self._bar = tqdm(total=total_steps, initial=start_step, unit="step", desc="train", disable=not progress)

    def step(self, record: dict[str, Any]) -> None:
        """A finished step; a line is written when the step closes a window of ``every`` steps."""
        if not self.enabled:
            return
        self._window.append(record)
        if (record["step"] + 1) % self.every == 0:
            self.flush()
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)

    def flush(self) -> None:
        """Write the steps not yet written as one (possibly shorter) window."""
        if self._window:
            self.record(average(self._window))
            self._window = []

    def record(self, record: dict[str, Any]) -> None:
        """A line in the JSONL file and TensorBoard (a window of steps, or e.g. an evaluation)."""
        if not self.enabled:
            return
        assert self._jsonl is not None
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        """Write the last, possibly shorter, window and close the outputs."""
        if not self.enabled:
            return
        self.flush()
        if self._bar is not None:
            self._bar.close()
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The lines of a run's ``log.jsonl``, in order."""
    path = Path(run_dir) / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
