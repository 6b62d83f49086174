"""Propagation passes under ``ino demo``'s clock, and their scores: a pass re-reads the clock before every sequence
and after every frame.

Why: the trained backbone's propagation used to be budgeted from the random-init propagation's time alone,
measured minutes earlier. When the machine's load changed in between (a second job started beside the demo), the
trained pass took 177 s instead of 31 s and the demo overran its 600 s budget by a fifth. Now a pass that would end
past its deadline stops: it leaves out the sequences it did not reach, or, when even the first sequence does not
fit, propagates only that sequence's first frames. The demo then scores random init, trained and the grid ceiling
on the same sequences and frames, and its report says what was cut (:class:`Coverage`).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ino.data.davis import DavisLayout, read_frame, write_mask
from ino.evaluation.scorer import evaluate
from ino.propagation.api import VideoPropagator
from ino.propagation.presets import PropagationConfig

log = logging.getLogger(__name__)
#: the scorer leaves out each sequence's first and last frames, so three is the fewest frames it can score
MIN_FRAMES = 3


@dataclass(frozen=True)
class Clock:
    """The demo's budget on the monotonic clock (the clock ``ino.training.loop.train``'s deadline is read on)."""

    started: float
    budget_s: float

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def deadline(self, share: float = 1.0, reserve_s: float = 0.0) -> float:
        """The moment ``share`` of the budget has gone by, less ``reserve_s`` kept for what follows."""
        return self.started + share * self.budget_s - reserve_s


@dataclass
class BenchmarkResult:
    """Scores of one backbone on one benchmark."""

    global_scores: dict[str, float]
    sequence_jf: dict[str, float]
    seconds: float


@dataclass
class PassResult:
    """What one propagation pass over a benchmark wrote before its deadline."""

    sequences: list[str]  # propagated through ``frames`` frames each, in the order asked
    frames: int | None  # the frame limit: the benchmark's own, or fewer when the clock cut a lone first sequence
    seconds: float
    cut: bool  # the clock stopped the pass before the end of what it was asked


@dataclass
class Coverage:
    """What a benchmark's three scores (random init, trained, grid ceiling) were computed on."""

    total: int  # sequences in the benchmark
    random_sequences: int  # sequences the random-init pass reached before its deadline
    sequences: list[str]  # the scored ones: those the trained pass reached (a prefix of the random pass's)
    frames: int | None  # frames scored per sequence (None: every frame, up to the benchmark's own limit)
    frames_cut: bool  # ``frames`` is the clock's cut of a lone sequence, not the benchmark's own limit

    @property
    def complete(self) -> bool:
        return len(self.sequences) == self.total and not self.frames_cut


def propagate_within(
    backbone: torch.nn.Module,
    root: Path,
    out: Path,
    config: PropagationConfig,
    names: list[str],
    max_frames: int | None,
    deadline: float,
) -> PassResult:
    """Propagate each sequence's first-frame mask into ``out/<sequence>/`` until ``deadline`` (monotonic clock).

    A sequence is started only if it should end before the deadline at this pass's own measured seconds per
    frame (the load of the moment), and abandoned if the deadline passes during it. The first sequence always
    runs, for at least :data:`MIN_FRAMES` frames: when the deadline cuts it, it is kept with the frames it got.
    """
    layout = DavisLayout(root)
    propagator = VideoPropagator(backbone, config, device="cpu", batch_size=4)
    started = time.monotonic()
    done: list[str] = []
    frames_done = 0
    for name in names:
        frames = layout.image_frames(name)[:max_frames]
        if done:
            per_frame = (time.monotonic() - started) / frames_done
            if time.monotonic() + per_frame * len(frames) > deadline:
                log.info(f"{out.name}: out of time before sequence {name} ({len(done)} of {len(names)} propagated)")
                return PassResult(done, max_frames, time.monotonic() - started, cut=True)
        written = _sequence(propagator, layout, name, frames, out / name, deadline)
        if written < len(frames):
            if done:  # a later sequence cut short is left out: the others keep their full length
                shutil.rmtree(out / name)  # written by this pass just now
                log.info(f"{out.name}: out of time during sequence {name}; {len(done)} of {len(names)} propagated")
                return PassResult(done, max_frames, time.monotonic() - started, cut=True)
            log.info(f"{out.name}: out of time during the first sequence: scored on its first {written} frames")
            return PassResult([name], written, time.monotonic() - started, cut=True)
        done.append(name)
        frames_done += written
    return PassResult(done, max_frames, time.monotonic() - started, cut=False)


def _sequence(
    propagator: VideoPropagator, layout: DavisLayout, name: str, frames: list[Path], folder: Path, deadline: float
) -> int:
    """Write the masks of ``frames`` into ``folder``, stopping (after at least :data:`MIN_FRAMES`) once the deadline
    has passed; returns the number of frames written."""
    folder.mkdir(parents=True)
    annotation = layout.annotation_dir(name) / f"{frames[0].stem}.png"
    masks: Iterator[np.ndarray] = propagator.run((read_frame(path) for path in frames), {0: annotation})
    for count, (path, ids) in enumerate(zip(frames, masks, strict=True), start=1):
        write_mask(folder / f"{path.stem}.png", ids)
        if MIN_FRAMES <= count < len(frames) and time.monotonic() > deadline:
            return count
    return len(frames)


def score(root: Path, folder: Path, sequences: list[str], max_frames: int | None, seconds: float) -> BenchmarkResult:
    """DAVIS J&F of the masks in ``folder`` on ``sequences`` (their first ``max_frames`` frames), with the seconds
    that producing the masks took."""
    evaluation = evaluate(root, folder, sequences=sequences, max_frames=max_frames)
    return BenchmarkResult(evaluation.global_results(), evaluation.sequence_jf(), seconds)
