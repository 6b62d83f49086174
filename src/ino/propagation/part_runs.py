"""VIP part propagation on disk: the 20 part classes of each video's first annotated frame through its frames,
resumable and sharded.

Per video (docs/evaluation.md, "VIP part propagation"): the first annotated frame's class ids become 20 soft labels
on the feature grid (:func:`part_labels`: a one-hot per class, downsampled as the preset says, a pixel marked 255
"not annotated" an all-zero vector, a class absent from the frame a channel of zeros), which
:meth:`~ino.propagation.api.VideoPropagator.run_soft` carries through every frame from there to the end (soft,
never argmaxed in between). Every annotated frame's labels, the first included (VIP's scorer counts it), are turned
into class ids at the ground truth's size (:func:`~ino.propagation.engine.labels_to_mask`) and written as
``<out>/<video>/<frame>.png`` (grayscale, :func:`~ino.data.vip.write_category_ids`). Frames without annotation are
propagated through and not written.

A video is written into ``<out>/.partial-<video>/`` and renamed into place when complete, as the DAVIS run does;
resume and ``torchrun`` sharding are those of :mod:`ino.propagation.run_state`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ino.data.davis import read_frame
from ino.data.vip import IGNORE_ID, N_CLASSES, VipLayout, VipVideo, read_category_ids, write_category_ids
from ino.errors import InoError
from ino.propagation.api import VideoPropagator
from ino.propagation.engine import first_frame_labels, labels_to_mask
from ino.propagation.features import map_frames
from ino.propagation.presets import PropagationConfig
from ino.propagation.run_state import run_shared, shared_run
from ino.utils.distributed import Distributed
from ino.utils.outputs import refuse_inside, remove_made, renew


def part_labels(ids: np.ndarray, grid_hw: tuple[int, int], config: PropagationConfig) -> torch.Tensor:
    """Soft labels (20, h, w) of a class-id map (H, W) on the feature grid; 255 contributes to no channel.

    The downsampling is the mask path's (:func:`~ino.propagation.engine.first_frame_labels`, the preset's
    ``label_downsampling``), with 255 taken as a 21st class whose channel is then dropped.
    """
    with_void = np.where(ids == IGNORE_ID, N_CLASSES, ids).astype(np.uint8)
    return first_frame_labels(with_void, grid_hw, config, n_classes=N_CLASSES + 1)[:N_CLASSES]


def propagated_frames(video: VipVideo, max_frames: int | None = None) -> tuple[Path, ...]:
    """The frames a run goes through: from the first annotated one, the first ``max_frames`` of them."""
    return video.propagated_frames()[:max_frames]


def propagate_vip(
    vip_root: str | Path,
    out: str | Path,
    propagator: VideoPropagator,
    settings: Mapping[str, object],
    *,
    set_name: str = "val",
    list_file: str | Path | None = None,
    videos: Sequence[str] | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    dist: Distributed | None = None,
) -> list[str]:
    """Propagate each video's first annotated frame; write ``<out>/<video>/<frame>.png`` for its annotated frames.

    Videos: ``videos``, else those of ``list_file`` (default ``lists/<set>_videos.txt``), else every annotated
    video; each is checked (every annotation has its frame, of its size) before any work. ``max_frames``: only the
    first N frames from the first annotated one. With ``dist`` (a rank of a ``torchrun`` job) this rank does its
    share only. Returns the videos of the run, finished ones included.
    """
    layout = VipLayout(Path(vip_root))
    out = Path(out)
    refuse_inside(out, layout.data_folders())
    names = list(videos) if videos else layout.videos(set_name, list_file)
    checked = {name: layout.video(name) for name in names}
    shown = progress and (dist is None or dist.is_main)

    def work(name: str) -> None:
        try:
            _video(checked[name], out / name, propagator, max_frames, shown)
        except InoError as error:
            raise InoError(f"video {name!r}: {error}") from None

    frames = {name: len(propagated_frames(checked[name], max_frames)) for name in names}
    with shared_run(out, {**settings, "max_frames": max_frames}, dist) as state:
        bar = ("videos", "video") if shown else None
        run_shared(state, names, lambda n: out / n, frames.__getitem__, work, dist, bar)
    return names


def _video(video: VipVideo, folder: Path, propagator: VideoPropagator, max_frames: int | None, progress: bool) -> None:
    """One video into a hidden ``.partial-`` folder (its previous version, made by ``ino``, removed first; a foreign
    one stops the run), renamed into place when its last annotated frame is written."""
    frames = propagated_frames(video, max_frames)
    annotated = set(video.annotated)
    first = read_category_ids(video.annotations[0])
    target, grid = propagator.geometry(*first.shape)
    labels = part_labels(first, grid, propagator.config)
    remove_made(folder)
    partial = renew(folder.parent / f".partial-{folder.name}")
    listed = tqdm(frames, desc=video.name, unit="frame", leave=False, disable=not progress)
    with contextlib.closing(propagator.run_soft(map_frames(read_frame, listed), labels)) as stream:
        for path, soft in zip(frames, stream, strict=True):
            if path.stem in annotated:
                ids = labels_to_mask(soft, target, first.shape, propagator.config)
                write_category_ids(partial / f"{path.stem}.png", ids)
    os.replace(partial, folder)
