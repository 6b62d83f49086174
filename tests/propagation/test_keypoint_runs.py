"""The JHMDB run's plumbing is exact: with a propagator that hands back every frame's own encoded ground truth it
scores the grid ceiling computed straight from ``ino.propagation.keypoints``; with the real engine on features
that match each grid cell to itself it is the first-frame copy; and the cases real data has (joints outside the
frame or stored as zeros, one-frame videos, a missing frame) end as they should.

The data are ``ino synth --format jhmdb`` videos: 0 a walk, 1 a figure leaving the frame, 2 joints stored as (0, 0)
from frame 1 on, 3 one frame, 4 feet below the bottom edge from frame 0 on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat

from ino.data.davis import read_frame
from ino.data.jhmdb import (
    FRAMES_DIR,
    JOINTS_DIR,
    JOINTS_FILE,
    JhmdbLayout,
    keypoints_path,
    read_keypoints,
    write_keypoints,
)
from ino.data.synthetic_jhmdb import LIST_NAME, ONE_FRAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.errors import InoError
from ino.evaluation.pck import evaluate_pck
from ino.propagation.api import VideoPropagator
from ino.propagation.keypoint_runs import contact_sheet, keypoint_spec, propagate_jhmdb
from ino.propagation.keypoints import KEYPOINT_PRESETS, GridGeometry, KeypointSpec, decode_joints, encode_joints
from ino.propagation.presets import PropagationConfig, grid_size, resolve_config, target_size

#: JHMDB's geometry at half size: 120 x 160 frames squashed to 160 x 160, stride 8 -> a 20 x 20 grid
SQUARE = resolve_config("ino-davis", size_overrides=(((120, 160), (160, 160)),))
#: the same at stride 16 (10 x 10), for the real engine on one-hot position features (100 channels, not 400)
COARSE = resolve_config(SQUARE, patch_size=16, size_multiple=16)


@pytest.fixture(scope="module")
def jhmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jhmdb")
    write_jhmdb_benchmark(root, videos=5, config=JhmdbSynthConfig(height=120, width=160, frames=8), seed=2)
    return root


def geometry_of(config: PropagationConfig, size: tuple[int, int]) -> GridGeometry:
    return GridGeometry(size, target_size(*size, config), config.patch_size)


def round_trip(joints: np.ndarray, geometry: GridGeometry, spec: KeypointSpec) -> np.ndarray:
    """Joints (T, 15, 2) through the grid and back, frame by frame: what a perfect matcher's labels decode to."""
    return np.stack([decode_joints(encode_joints(frame, geometry, spec), geometry, spec) for frame in joints])


class GroundTruthPropagator:
    """A stand-in for the engine that yields every frame's own ground truth, encoded on the grid (frame 0: the run's
    own encoding, checked). The video is recognised by its first frame."""

    def __init__(self, root: Path, config: PropagationConfig, spec: KeypointSpec) -> None:
        self.config, self.spec, self.layout = config, spec, JhmdbLayout(root)
        self.videos = {}
        for name in self.layout.videos(root / LIST_NAME):
            video = self.layout.load(name)
            self.videos[hashlib.sha1(read_frame(video.frames[0]).tobytes()).hexdigest()] = video

    def geometry(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        target = target_size(height, width, self.config)
        return target, grid_size(target, self.config)

    def run_soft(self, frames: Iterable[np.ndarray], first_labels: torch.Tensor) -> Iterator[torch.Tensor]:
        stream = iter(frames)
        try:
            first = next(stream)
            video = self.videos[hashlib.sha1(first.tobytes()).hexdigest()]
            geometry = geometry_of(self.config, video.size)
            truth = video.truth.joints
            np.testing.assert_array_equal(first_labels.numpy(), encode_joints(truth[0], geometry, self.spec))
            yield first_labels
            for t, _ in enumerate(stream, start=1):
                yield torch.from_numpy(encode_joints(truth[t], geometry, self.spec))
        finally:
            stream.close()  # type: ignore[attr-defined]


class PositionFeatures:
    """A backbone whose feature at each grid cell is the one-hot vector of the cell's index: every cell matches
    itself in every frame (cosine 1) and nothing else (cosine 0)."""

    def __init__(self, propagator: VideoPropagator) -> None:
        self.propagator = propagator

    def __call__(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        for frame in frames:
            _, (h, w) = self.propagator.geometry(frame.shape[0], frame.shape[1])
            yield torch.eye(h * w).reshape(h * w, h, w)


@pytest.mark.parametrize(("preset", "topk"), [("crw-jhmdb", 3), ("cropmae-jhmdb", 5)])
def test_the_encoded_ground_truth_of_every_frame_scores_the_grid_ceiling(
    jhmdb: Path, tmp_path: Path, preset: str, topk: int
) -> None:
    spec = keypoint_spec(preset)
    assert spec == KEYPOINT_PRESETS["crw" if topk == 3 else "cropmae"] and spec.topk == topk
    out, ceiling = tmp_path / "run", tmp_path / "ceiling"
    stub = GroundTruthPropagator(jhmdb, SQUARE, spec)
    names = propagate_jhmdb(jhmdb, out, stub, {"preset": preset}, list_file=jhmdb / LIST_NAME, progress=False)
    layout = JhmdbLayout(jhmdb)
    for name in names:
        video = layout.load(name)
        expected = round_trip(video.truth.joints, geometry_of(SQUARE, video.size), spec)
        assert geometry_of(SQUARE, video.size).grid_hw == (20, 20)
        np.testing.assert_array_equal(read_keypoints(keypoints_path(out, name)), expected)  # NaN where lost
        write_keypoints(keypoints_path(ceiling, name), name, expected)
    run, direct = (evaluate_pck(jhmdb, folder, videos=names).global_results() for folder in (out, ceiling))
    assert run == direct
    assert run["PCK@0.5"] > 95  # a ceiling: only the grid's quantisation is lost
    state = json.loads((out / ".ino-propagate.json").read_text())
    assert state["settings"]["keypoints"]["topk"] == topk and sorted(state["finished"]) == sorted(names)


def test_features_matching_each_cell_to_itself_give_the_first_frame_copy(jhmdb: Path, tmp_path: Path) -> None:
    """The real engine with top-1 and no previous frames: each cell's labels are frame 0's, so every frame decodes
    to frame 0's joints, bit for bit; on moving figures that scores below the grid ceiling."""
    propagator = VideoPropagator(None, COARSE, topk=1, n_last_frames=0)
    propagator.extractor = PositionFeatures(propagator)  # type: ignore[assignment]
    spec = KEYPOINT_PRESETS["cropmae"]
    out = tmp_path / "copy"
    names = propagate_jhmdb(jhmdb, out, propagator, {"preset": "x"}, list_file=jhmdb / LIST_NAME, progress=False)
    layout = JhmdbLayout(jhmdb)
    for name in names:
        video = layout.load(name)
        first = round_trip(video.truth.joints[:1], geometry_of(COARSE, video.size), spec)
        predicted = read_keypoints(keypoints_path(out, name))
        np.testing.assert_array_equal(predicted, np.repeat(first, video.truth.n_frames, axis=0))
    copy = evaluate_pck(jhmdb, out, videos=names).global_results()
    ceiling_out = tmp_path / "ceiling"
    propagate_jhmdb(jhmdb, ceiling_out, GroundTruthPropagator(jhmdb, COARSE, spec), {"preset": "x"}, videos=names,
                    progress=False)  # fmt: skip
    ceiling = evaluate_pck(jhmdb, ceiling_out, videos=names).global_results()
    assert copy["PCK@0.1"] < ceiling["PCK@0.1"] and copy["PCK@0.2"] < ceiling["PCK@0.2"]


def with_frame0_edits(root: Path, name: str, edits: dict[int, tuple[float, float]]) -> None:
    """Rewrite ``name``'s pos_img so that, in frame 0 only, joint j sits at the 1-based (x, y) given."""
    path = root / JOINTS_DIR / name / JOINTS_FILE
    contents = loadmat(path)
    pos = contents["pos_img"].copy()
    for joint, (x, y) in edits.items():
        pos[:, joint, 0] = (x, y)
    savemat(path, {"pos_img": pos})


def test_joints_outside_the_frame_or_stored_as_zeros_and_a_one_frame_video(jhmdb: Path, tmp_path: Path) -> None:
    """Frame 0: a joint far outside draws nothing and is lost in every frame (never scored); a (0, 0) joint is drawn
    near the top-left corner, as the references do, and tracked like any other; later zeros and joints that leave
    the frame (videos 1, 2, 4) change nothing in the run. A one-frame video gives its own round trip."""
    root = tmp_path / "edited"
    write_jhmdb_benchmark(root, videos=5, config=JhmdbSynthConfig(height=120, width=160, frames=8), seed=2)
    walk = JhmdbLayout(root).videos(root / LIST_NAME)[0]
    with_frame0_edits(root, walk, {2: (-60.0, 10.0), 13: (0.0, 0.0)})  # face far left; right ankle (0, 0)
    propagator = VideoPropagator(None, COARSE, topk=1, n_last_frames=0)
    propagator.extractor = PositionFeatures(propagator)  # type: ignore[assignment]
    out = tmp_path / "out"
    names = propagate_jhmdb(root, out, propagator, {"preset": "x"}, list_file=root / LIST_NAME, progress=False)
    predicted = read_keypoints(keypoints_path(out, walk))
    assert np.isnan(predicted[:, 2]).all()
    assert np.isfinite(predicted[:, 13]).all() and (predicted[0, 13] < 32).all()  # within two cells of the corner
    assert json.loads(keypoints_path(out, walk).read_text())["joints"][3][2] is None
    assert np.isfinite(np.delete(predicted, 2, axis=1)).all()
    one = names[ONE_FRAME]
    video = JhmdbLayout(root).load(one)
    np.testing.assert_array_equal(
        read_keypoints(keypoints_path(out, one)),
        round_trip(video.truth.joints, geometry_of(COARSE, video.size), KEYPOINT_PRESETS["cropmae"]),
    )
    evaluation = evaluate_pck(root, out, videos=names)
    assert evaluation.video_results()[one]["PCK@0.1"] is None  # nothing after frame 0 to score
    counted = next(v for v in evaluation.videos if v.name == walk).counted
    assert not counted[:, 2].any() and counted[1:, 13].all()  # the lost joint never counts; the zero one does


def test_a_missing_frame_stops_before_any_work_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    write_jhmdb_benchmark(root, videos=1, config=JhmdbSynthConfig(height=60, width=80, frames=4), broken=True)
    listed = tmp_path / "list.txt"
    listed.write_text("synth_walk/figure_000\nbroken/missing_frame\n")
    propagator = VideoPropagator(None, SQUARE)
    out = tmp_path / "out"
    with pytest.raises(InoError, match=r"missing_frame: frame 00003\.png is missing") as caught:
        propagate_jhmdb(root, out, propagator, {"preset": "x"}, list_file=listed, progress=False)
    assert "\n" not in str(caught.value)
    assert str(root / FRAMES_DIR / "broken" / "missing_frame") in str(caught.value)
    assert not out.exists()  # not even the first, good video was started


def test_a_foreign_action_folder_stops_the_run_and_is_left_alone(jhmdb: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "synth_walk").mkdir(parents=True)
    (out / "synth_walk" / "notes.txt").write_text("mine")
    stub = GroundTruthPropagator(jhmdb, SQUARE, KEYPOINT_PRESETS["crw"])
    with pytest.raises(InoError, match="synth_walk exists and was not made by ino"):
        propagate_jhmdb(jhmdb, out, stub, {"preset": "x"}, list_file=jhmdb / LIST_NAME, progress=False)
    assert [p.name for p in (out / "synth_walk").iterdir()] == ["notes.txt"]
    assert not list(out.rglob("*.json"))


def test_keypoint_spec_follows_the_preset_and_its_overrides() -> None:
    assert keypoint_spec("crw-vip").topk == 3 and keypoint_spec("ino-davis").topk == 5
    assert keypoint_spec("crw-jhmdb", topk=1, sigma=1.0) == KeypointSpec(sigma=1.0, drawing="reference", topk=1)


def test_contact_sheet_tiles_frames_in_rows_with_their_numbers() -> None:
    tiles = [(t, np.full((60, 100, 3), 40 * t, dtype=np.uint8)) for t in range(4)]
    sheet = contact_sheet(tiles, columns=3)
    assert sheet.shape == (120, 300, 3)
    assert sheet[59, 99, 0] == 0 and sheet[59, 299, 0] == 80 and sheet[119, 99, 0] == 120  # tiles 0, 2 and 3
    assert (sheet[60:, 100:] == 255).all()  # the empty slots of the second row
    assert sheet[:20, :60].max() > 150  # "frame 1" written in white on the first (black) tile
