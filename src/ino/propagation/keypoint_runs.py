"""JHMDB keypoint propagation on disk: every video's 15 joints through its frames, resumable and sharded.

Per video (docs/evaluation.md, "JHMDB keypoint propagation"): frame 0's joints become 16 soft label maps on the
feature grid (:func:`~ino.propagation.keypoints.encode_joints`: background + one Gaussian per joint, as CRW and
CropMAE draw them), :meth:`~ino.propagation.api.VideoPropagator.run_soft` carries them through the frames (soft,
never argmaxed), and each frame's maps are decoded back to pixel joints (the references' top-k weighted mean).
Frame 0's output is its own encoded-and-decoded input, as in the references (PCK never scores frame 0).

Outputs, each written temp-then-rename: ``<out>/<action>/<video>.json`` (:func:`~ino.data.jhmdb.write_keypoints`,
written last: its presence marks the video done) and, unless turned off, ``<out>/<action>/<video>.png``, a contact
sheet of evenly spaced frames with the predicted skeleton. The ``<action>`` folders are marked as ``ino``'s before
any work; one that exists without the mark stops the run. Resume and ``torchrun`` sharding are those of the DAVIS
run (:mod:`ino.propagation.run_state`): finished videos are skipped, other settings are refused. Memory holds one
video's context (the engine's bound), its decoded joints and the few frames of its contact sheet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ino.data.davis import read_frame
from ino.data.jhmdb import JhmdbLayout, JhmdbVideo, keypoints_path, write_keypoints
from ino.errors import InoError
from ino.propagation.api import VideoPropagator
from ino.propagation.features import map_frames
from ino.propagation.keypoints import KEYPOINT_PRESETS, GridGeometry, KeypointSpec, decode_joints, encode_joints
from ino.propagation.run_state import run_shared, shared_run
from ino.utils import distributed
from ino.utils.atomic import atomic_write
from ino.utils.distributed import Distributed
from ino.utils.outputs import claim_folder, mark_made, refuse_inside
from ino.utils.pose_overlay import draw_skeleton

log = logging.getLogger(__name__)
#: frames on a video's contact sheet (evenly spaced, the first and the last included), and its columns
SHEET_FRAMES, SHEET_COLUMNS = 6, 3


def keypoint_spec(preset: str, *, topk: int | None = None, sigma: float | None = None) -> KeypointSpec:
    """How joints are drawn and read back under ``preset``: CRW's (decode top-3) for a ``crw-*`` preset, CropMAE's
    (top-5) for any other, both sigma 0.5 grid cells; ``topk`` / ``sigma`` replace the preset's value."""
    spec = KEYPOINT_PRESETS["crw" if preset.startswith("crw") else "cropmae"]
    overrides = {k: v for k, v in {"topk": topk, "sigma": sigma}.items() if v is not None}
    return dataclasses.replace(spec, **overrides) if overrides else spec


def propagate_jhmdb(
    jhmdb_root: str | Path,
    out: str | Path,
    propagator: VideoPropagator,
    settings: Mapping[str, object],
    *,
    list_file: str | Path | None = None,
    videos: Sequence[str] | None = None,
    keypoints: KeypointSpec | None = None,
    overlay: bool = True,
    max_frames: int | None = None,
    progress: bool = True,
    dist: Distributed | None = None,
) -> list[str]:
    """Propagate each video's frame-0 joints; write ``<out>/<action>/<video>.json`` (and ``.png``).

    Videos: ``videos``, else those of ``list_file``, else every video with a joint file; all are checked (frames
    1..T present and of one size, joint file readable and of T frames) before any work. ``keypoints``: the
    encoding and decoding (default: :func:`keypoint_spec` of ``settings["preset"]``). ``max_frames``: only each
    video's first N frames. With ``dist`` (a rank of a ``torchrun`` job) this rank does its share only. Returns the
    videos of the run, finished ones included.
    """
    layout = JhmdbLayout(Path(jhmdb_root))
    out = Path(out)
    refuse_inside(out, layout.data_folders())
    names = list(videos) if videos else layout.videos(list_file)
    spec = keypoints or keypoint_spec(str(settings.get("preset", "")))
    checked = {name: layout.load(name) for name in names}
    shown = progress and (dist is None or dist.is_main)

    def work(name: str) -> None:
        try:
            _video(checked[name], out, propagator, spec, overlay, max_frames, shown)
        except InoError as error:
            raise InoError(f"video {name!r}: {error}") from None

    job = {**settings, "max_frames": max_frames, "keypoints": dataclasses.asdict(spec), "overlay": overlay}
    with shared_run(out, job, dist) as state:
        _claim_action_folders(out, names, dist)
        bar = ("videos", "video") if shown else None
        frames = {name: len(checked[name].frames[:max_frames]) for name in names}
        run_shared(state, names, lambda n: keypoints_path(out, n), frames.__getitem__, work, dist, bar)
    return names


def _claim_action_folders(out: Path, names: Sequence[str], dist: Distributed | None) -> None:
    """Rank 0 marks every ``<out>/<action>`` folder of the run as ``ino``'s (a foreign one stops every rank before
    any work), so that the files in it may be replaced when a video is redone."""
    problem = None
    if dist is None or dist.is_main:
        try:
            for action in sorted({name.split("/")[0] for name in names}):
                mark_made(claim_folder(out / action))
        except InoError as error:
            problem = error
    if distributed.any_over_ranks(problem is not None):
        raise problem or InoError(f"{out}: rank 0 could not claim the action folders; see its message")


def _video(
    video: JhmdbVideo,
    out: Path,
    propagator: VideoPropagator,
    spec: KeypointSpec,
    overlay: bool,
    max_frames: int | None,
    progress: bool,
) -> None:
    """One video: encode frame 0, propagate, decode every frame; the contact sheet, then the keypoint file."""
    frames = list(video.frames[:max_frames])
    target, grid = propagator.geometry(*video.size)
    geometry = GridGeometry(video.size, target, propagator.config.patch_size)
    if geometry.grid_hw != grid:
        raise InoError(f"the keypoint grid {geometry.grid_hw} differs from the feature grid {grid}")
    first = torch.from_numpy(encode_joints(video.truth.joints[0], geometry, spec))
    chosen = set(np.linspace(0, len(frames) - 1, min(SHEET_FRAMES, len(frames))).round().astype(int).tolist())
    kept: dict[int, np.ndarray] = {}

    def read(item: tuple[int, Path]) -> np.ndarray:
        t, path = item
        rgb = read_frame(path)
        if overlay and t in chosen:
            kept[t] = rgb
        return rgb

    listed = tqdm(list(enumerate(frames)), desc=video.name, unit="frame", leave=False, disable=not progress)
    with contextlib.closing(propagator.run_soft(map_frames(read, listed), first)) as stream:
        joints = np.stack([decode_joints(soft, geometry, spec) for soft in stream])
    if overlay:
        tiles = [(t, draw_skeleton(kept[t], joints[t])) for t in sorted(chosen)]
        sheet = Image.fromarray(contact_sheet(tiles))
        atomic_write(keypoints_path(out, video.name, ".png"), lambda stream: sheet.save(stream, format="PNG"))
    write_keypoints(keypoints_path(out, video.name), video.name, joints)


def contact_sheet(tiles: Sequence[tuple[int, np.ndarray]], columns: int = SHEET_COLUMNS) -> np.ndarray:
    """Equal-sized RGB frames in rows of ``columns``, each labelled with its 1-based frame number (JHMDB's file
    names). Plain array work: a sheet per video must cost next to nothing beside the propagation."""
    height, width = tiles[0][1].shape[:2]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    scale = max(0.35, height / 600)
    for index, (t, image) in enumerate(tiles):
        tile = np.ascontiguousarray(image, dtype=np.uint8).copy()
        for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # white text on a black outline
            cv2.putText(tile, f"frame {t + 1}", (4, 4 + round(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                        thickness, cv2.LINE_AA)  # fmt: skip
        row, column = divmod(index, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = tile
    return sheet
