"""The JHMDB reader: layout, split lists in every form found in the wild, one clear error per bad file or line,
the joint table and skeleton, and the keypoint files ``ino`` writes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from ino.data.jhmdb import (
    JOINT_NAMES,
    N_JOINTS,
    SKELETON,
    JhmdbLayout,
    keypoints_path,
    read_keypoints,
    write_keypoints,
)
from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.errors import InoError

CONFIG = JhmdbSynthConfig(height=48, width=64, frames=5)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("jhmdb")
    return root, write_jhmdb_benchmark(root, 5, CONFIG, seed=2, broken=True)


def test_skeleton_is_a_tree_over_the_fifteen_joints() -> None:
    assert len(JOINT_NAMES) == N_JOINTS == 15 and len(SKELETON) == 14
    parent = {}
    for a, b in SKELETON:
        assert b not in parent and b != a
        parent[b] = a
    assert set(parent) | {1} == set(range(N_JOINTS))  # every joint but the belly (root) has one parent
    for joint in range(N_JOINTS):  # and every chain reaches the root
        seen = set()
        while joint != 1:
            assert joint not in seen
            seen.add(joint)
            joint = parent[joint]


def test_load_checks_and_returns_zero_based_joints(bench: tuple[Path, list[str]]) -> None:
    root, names = bench
    layout = JhmdbLayout(root)
    from scipy.io import loadmat

    for name in names:
        video = layout.load(name)
        raw = loadmat(layout.joints_path(name))["pos_img"]
        raw = raw if raw.ndim == 3 else raw[:, :, None]
        np.testing.assert_array_equal(video.truth.joints, raw.transpose(2, 1, 0) - 1)
        assert video.size == (CONFIG.height, CONFIG.width)
        assert [p.name for p in video.frames] == [f"{t:05d}.png" for t in range(1, video.truth.n_frames + 1)]
    assert layout.load(names[3]).truth.n_frames == 1  # MATLAB's (2, 15) for one frame is read as T = 1
    unlabelled = layout.joints(names[2])
    assert not unlabelled.labelled.all()
    np.testing.assert_array_equal(unlabelled.joints[~unlabelled.labelled], -1.0)  # (0, 0) 1-based


@pytest.mark.parametrize(
    ("video", "message"),
    [
        ("broken/missing_frame", "frame 00003.png is missing"),
        ("broken/frame_count", "annotates 5 frame(s) but"),
        ("broken/unreadable_mat", "cannot read the .mat file"),
        ("broken/absent", "joint file"),
    ],
)
def test_bad_videos_stop_with_one_line(bench: tuple[Path, list[str]], video: str, message: str) -> None:
    root, _ = bench
    with pytest.raises(InoError) as caught:
        JhmdbLayout(root).load(video)
    text = str(caught.value)
    assert message in text and video in text and "\n" not in text


def _copy_video(root: Path, name: str, target: Path, new_name: str) -> JhmdbLayout:
    layout, new = JhmdbLayout(root), JhmdbLayout(target)
    shutil.copytree(layout.frames_dir(name), new.frames_dir(new_name))
    new.joints_path(new_name).parent.mkdir(parents=True)
    shutil.copy(layout.joints_path(name), new.joints_path(new_name))
    return new


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ({"other": np.zeros(3)}, "no 'pos_img' variable (variables: other)"),
        ({"pos_img": np.zeros((2, 14, 5))}, "pos_img has shape (2, 14, 5), expected (2, 15, T)"),
        ({"pos_img": np.full((2, 15, 5), np.nan)}, "non-numeric or non-finite"),
        ({"pos_img": np.zeros((2, 15, 0))}, "annotates no frame"),
    ],
)
def test_bad_joint_files(bench: tuple[Path, list[str]], tmp_path: Path, contents: dict, message: str) -> None:
    layout = _copy_video(bench[0], bench[1][0], tmp_path, "a/v")
    savemat(layout.joints_path("a/v"), contents)
    with pytest.raises(InoError, match=re.escape(message)):
        layout.load("a/v")


def test_frames_named_otherwise_or_of_another_size(bench: tuple[Path, list[str]], tmp_path: Path) -> None:
    layout = _copy_video(bench[0], bench[1][0], tmp_path, "a/v")
    (layout.frames_dir("a/v") / "cover.png").write_bytes((layout.frames_dir("a/v") / "00001.png").read_bytes())
    with pytest.raises(InoError, match=re.escape("cover.png: frame name is not a number")):
        layout.load("a/v")
    (layout.frames_dir("a/v") / "cover.png").unlink()
    from PIL import Image

    Image.new("RGB", (10, 10)).save(layout.frames_dir("a/v") / "00004.png")
    with pytest.raises(InoError, match=re.escape("00004.png: frame is 10x10 but 00001.png is 64x48")):
        layout.load("a/v")


def test_lists_in_every_order_and_form_give_the_same_videos(bench: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, names = bench
    layout = JhmdbLayout(root)
    assert layout.videos(root / LIST_NAME) == names  # UVC / CropMAE form, relative paths
    elsewhere = "/media/other/JHMDB"  # absolute paths of another machine: only <action>/<video> is used
    crw = tmp_path / "crw.txt"
    lines = [f"{elsewhere}/Rename_Images/{n} {elsewhere}/joint_positions/{n}/joint_positions.mat\n" for n in names]
    crw.write_text("".join(lines))
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(names) + "\n\n")
    assert layout.videos(crw) == names and layout.videos(plain) == names
    assert set(layout.videos()) == set(names) | {"broken/missing_frame", "broken/frame_count", "broken/unreadable_mat"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a b c", "3 entries"),
        ("x/y/joint_positions.mat z/y/joint_positions.mat", "two joint files"),
        ("Rename_Images/synth_walk/figure_000 Rename_Images/synth_walk/figure_000", "two frames folders"),
        (
            "joint_positions/synth_walk/figure_000/joint_positions.mat Rename_Images/synth_jump/figure_002",
            "the joint file is video 'synth_walk/figure_000' but the frames folder is 'synth_jump/figure_002'",
        ),
        ("figure_000", "does not name an <action>/<video>"),
        ("synth_walk/figure_999", "video 'synth_walk/figure_999' has no joint file"),
        ("synth_walk/figure_000", "listed twice \\(first on line 1\\)"),
    ],
)
def test_a_bad_list_line_is_one_error_naming_the_list_and_line(
    bench: tuple[Path, list[str]], tmp_path: Path, line: str, message: str
) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"synth_walk/figure_000\n\n{line}\n")
    with pytest.raises(InoError, match=f"^{listing}:3: .*{message}"):
        JhmdbLayout(bench[0]).videos(listing)


def test_empty_or_missing_list(bench: tuple[Path, list[str]], tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(InoError, match=re.escape("empty.txt: the video list is empty")):
        JhmdbLayout(bench[0]).videos(tmp_path / "empty.txt")
    with pytest.raises(InoError, match=re.escape("missing.txt: cannot read the video list")):
        JhmdbLayout(bench[0]).videos(tmp_path / "missing.txt")
    with pytest.raises(InoError, match="no such folder"):
        JhmdbLayout(tmp_path).videos()


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_keypoint_files_round_trip_with_lost_joints(tmp_path: Path, suffix: str) -> None:
    joints = np.random.default_rng(0).uniform(-5, 300, (4, N_JOINTS, 2))
    joints[1, 3] = np.nan
    path = write_keypoints(keypoints_path(tmp_path, "act/vid", suffix), "act/vid", joints)
    assert path == tmp_path / "act" / f"vid{suffix}"
    np.testing.assert_array_equal(read_keypoints(path), joints)  # JSON floats round-trip exactly


def test_unreadable_keypoint_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"format": "something else"}')
    with pytest.raises(InoError, match=re.escape("a.json: cannot read the keypoints")):
        read_keypoints(tmp_path / "a.json")
    write_keypoints(tmp_path / "b.npz", "x/y", np.zeros((2, N_JOINTS, 2)))
    np.savez(tmp_path / "c.npz", joints=np.zeros((2, 14, 2)))
    with pytest.raises(InoError, match=r"c.npz: keypoints have shape \(2, 14, 2\)"):
        read_keypoints(tmp_path / "c.npz")
