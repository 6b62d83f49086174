"""The synthetic JHMDB benchmark: files in the real layout and types, joints exactly where they are drawn, the
cases real data has, determinism, and ``ino synth --format jhmdb``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from ino.cli import main
from ino.data.jhmdb import N_JOINTS, JhmdbLayout
from ino.data.synthetic_jhmdb import (
    FEET_OUTSIDE,
    LEAVES_FRAME,
    LIST_NAME,
    ONE_FRAME,
    UNLABELLED,
    JhmdbSynthConfig,
    make_figure,
    write_jhmdb_benchmark,
)

CONFIG = JhmdbSynthConfig(height=120, width=160, frames=8)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("jhmdb")
    return root, write_jhmdb_benchmark(root, 6, CONFIG, seed=5)


def test_joint_files_have_jhmdb_variables_and_types(bench: tuple[Path, list[str]]) -> None:
    root, names = bench
    for index, name in enumerate(names):
        contents = loadmat(root / "joint_positions" / name / "joint_positions.mat")
        frames = 1 if index == ONE_FRAME else CONFIG.frames
        pos_img = contents["pos_img"]
        assert pos_img.shape == (2, N_JOINTS, frames) and pos_img.dtype == np.float64
        assert contents["scale"].shape == (1, frames) and str(contents["viewpoint"][0]) == "E"
        figure = make_figure(CONFIG, 5, index)
        expected = np.stack([figure.joints(t) for t in range(frames)]).transpose(2, 1, 0) + 1  # 1-based
        labelled = pos_img.any(axis=0)
        np.testing.assert_array_equal(pos_img[:, labelled], expected[:, labelled])


def test_every_joint_is_drawn_where_the_file_says(bench: tuple[Path, list[str]]) -> None:
    """At each joint's (rounded) position the frame has that joint's own colour, unless a later joint's disc covers
    it; a matcher that finds the colour finds the joint to within half a pixel."""
    root, names = bench
    layout = JhmdbLayout(root)
    hues = np.uint8([[[round(180 * j / N_JOINTS), 255, 230] for j in range(N_JOINTS)]])
    colours = cv2.cvtColor(hues, cv2.COLOR_HSV2RGB)[0].astype(int)
    checked = 0
    for index, name in enumerate(names):
        video = layout.load(name)
        size = make_figure(CONFIG, 5, index).size
        reach = 2 * (max(2, round(size * 0.045)) + 2) + 1  # two discs' radius, rims included, plus a pixel
        poses = np.stack([make_figure(CONFIG, 5, index).joints(t) for t in range(video.truth.n_frames)])
        for t, path in enumerate(video.frames):
            image = np.asarray(Image.open(path)).astype(int)
            for j, (x, y) in enumerate(poses[t]):
                column, row = round(x), round(y)
                later = np.hypot(*(poses[t, j + 1 :] - poses[t, j]).T) < reach
                if later.any() or not (0 <= column < CONFIG.width and 0 <= row < CONFIG.height):
                    continue
                assert np.abs(image[row, column] - colours[j]).max() <= 1, (name, t, j)
                checked += 1
    assert checked > 200


def test_the_cases_real_users_hit_are_present(bench: tuple[Path, list[str]]) -> None:
    root, names = bench
    layout = JhmdbLayout(root)
    leaving = layout.joints(names[LEAVES_FRAME]).joints
    inside = (leaving[..., 0] >= 0) & (leaving[..., 0] < CONFIG.width)
    assert inside[0].all() and not inside[-1].any() and (leaving[-1, :, 0] < 0).all()
    unlabelled = layout.joints(names[UNLABELLED])
    assert 0 < (~unlabelled.labelled).sum() < unlabelled.labelled.size and unlabelled.labelled[0].all()
    assert layout.load(names[ONE_FRAME]).truth.n_frames == 1
    feet = layout.joints(names[FEET_OUTSIDE]).joints[0]
    assert (feet[13:, 1] >= CONFIG.height).all() and (feet[:13, 1] < CONFIG.height).all()  # ankles below


def test_same_seed_same_files(tmp_path: Path) -> None:
    def digest(root: Path) -> str:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".png", ".txt"))
        return hashlib.sha256(
            b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes() for p in files)
        ).hexdigest()

    small = JhmdbSynthConfig(height=48, width=64, frames=3)
    first, second, other = (
        write_jhmdb_benchmark(tmp_path / n, 3, small, seed=s) for n, s in (("a", 1), ("b", 1), ("c", 2))
    )
    assert first == second == other
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_synth_command_writes_the_jhmdb_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    argv = ["synth", "--format", "jhmdb", "--out", str(out), "--sequences", "2", "--frames", "3", "--height", "48",
            "--width", "64", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert JhmdbLayout(out).videos(out / LIST_NAME) == ["synth_walk/figure_000", "synth_walk/figure_001"]
    assert f"list: {out}/{LIST_NAME}" in capsys.readouterr().out
    assert main([*argv[:4], str(tmp_path / "other"), "--baseline-out", str(tmp_path / "x")]) == 2
    assert "--baseline-out writes DAVIS masks" in capsys.readouterr().err
