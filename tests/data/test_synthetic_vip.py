"""The synthetic VIP benchmark: part labels are what was rendered, key frames only, the user cases, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.cli import main
from ino.data.synthetic_vip import (
    NEVER_DRAWN,
    SynthVipConfig,
    make_video,
    part_layer,
    render_frame,
    write_vip_benchmark,
)
from ino.data.vip import VipLayout, read_category_ids

CONFIG = SynthVipConfig(height=60, width=96, frames=11)


@pytest.mark.parametrize("index", range(4))
def test_part_pixels_carry_their_texture_and_the_front_part_wins(index: int) -> None:
    spec = make_video(CONFIG, seed=2, index=index)
    for t in (0, 4, 10):
        image, classes = render_frame(spec, t)
        front = np.zeros_like(classes)
        owner = np.full(classes.shape, -1)
        layers = [(part, *part_layer(spec, figure, part, t)) for figure in spec.figures for part in figure.parts]
        for number, (part, _, coverage) in enumerate(layers):  # figures and parts are listed back to front
            front[coverage] = part.class_id
            owner[coverage] = number
        np.testing.assert_array_equal(classes, front)
        for number, (_, texture, _) in enumerate(layers):
            here = owner == number
            np.testing.assert_array_equal(image[here], texture[here])
        assert (classes > 0).any()


def test_limbs_swing_and_figures_walk() -> None:
    spec = make_video(CONFIG, seed=0, index=0)
    figure = spec.figures[0]
    arm = next(p for p in figure.parts if p.class_id == 14)
    coverages = [part_layer(spec, figure, arm, t)[1] for t in (0, 3)]
    assert not np.array_equal(coverages[0], coverages[1])
    assert figure.velocity != (0.0, 0.0)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth-vip") / "VIP_Fine"
    write_vip_benchmark(root, videos=4, config=CONFIG, seed=5)
    return root


def test_key_frames_only_and_the_written_labels_are_the_rendered_ones(written) -> None:
    layout = VipLayout(written)
    assert (written / "lists" / "val_videos.txt").read_text() == "videos1\nvideos2\nvideos3\nvideos4\n"
    for index, name in enumerate(layout.videos()):
        video = layout.video(name)
        assert len(video.frames) == 11
        expected = (0, 5, 10) if name != "videos4" else (0,)  # the last video: one annotated frame
        assert video.annotated == tuple(f"{t + 1:012d}" for t in expected)
        spec = make_video(CONFIG, seed=5, index=index)
        for t, annotation in zip(expected, video.annotations, strict=True):
            np.testing.assert_array_equal(read_category_ids(annotation), render_frame(spec, t)[1])
        with Image.open(video.frames[0]) as frame:
            assert frame.size == (96, 60)


def test_classes_absent_from_videos(written) -> None:
    layout = VipLayout(written)
    present = []
    for name in layout.videos():
        classes: set[int] = set()
        for annotation in layout.video(name).annotations:
            classes |= set(np.unique(read_category_ids(annotation)).tolist())
        present.append(classes)
        assert not classes & set(NEVER_DRAWN)
    assert len({frozenset(c) for c in present}) > 1  # videos differ in which parts they show


def test_same_seed_same_bytes_other_seed_other_frames(tmp_path) -> None:
    def digest(root: Path) -> str:
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        return hashlib.sha256(
            b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes() for p in files)
        ).hexdigest()

    small = SynthVipConfig(height=32, width=48, frames=6)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_vip_benchmark(tmp_path / name, videos=2, config=small, seed=seed)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_cli_writes_the_vip_layout_and_refuses_the_davis_baseline(tmp_path, capsys) -> None:
    out = tmp_path / "vip"
    args = ["synth", "--format", "vip", "--out", str(out), "--sequences", "2", "--frames", "6"]
    assert main([*args, "--height", "32", "--width", "48", "--seed", "1"]) == 0
    assert "wrote 2 VIP-layout videos x 6 frames (annotated every 5)" in capsys.readouterr().out
    assert VipLayout(out).video("videos1").annotated == ("000000000001", "000000000006")
    assert main([*args, "--baseline-out", str(tmp_path / "baseline")]) == 2
    assert "--baseline-out writes DAVIS masks" in capsys.readouterr().err
