"""The synthetic benchmark's ground truth is what was rendered, and the same seed gives the same files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.data.davis import DavisLayout, read_mask
from ino.data.synthetic import SynthConfig, make_sequence, object_layer, render_frame, write_benchmark

CONFIG = SynthConfig(height=72, width=128, frames=10, min_objects=3, max_objects=4, max_speed=6.0)


@pytest.mark.parametrize("index", range(4))
def test_object_pixels_carry_their_texture_and_the_front_object_wins(index: int) -> None:
    spec = make_sequence(CONFIG, seed=3, index=index)
    for t in (0, 4, 9):
        image, ids = render_frame(spec, t)
        layers = [object_layer(spec, obj, t) for obj in spec.objects]
        front = np.zeros_like(ids)
        for object_id, (_, coverage) in enumerate(layers, start=1):
            front[coverage] = object_id  # objects are listed back to front
        np.testing.assert_array_equal(ids, front)
        for object_id, (texture, _) in enumerate(layers, start=1):
            here = ids == object_id
            np.testing.assert_array_equal(image[here], texture[here])
        covered = np.zeros(ids.shape, dtype=bool)
        for _, coverage in layers:
            covered |= coverage
        np.testing.assert_array_equal(ids > 0, covered)  # background exactly where no object covers


def test_occlusion_happens_and_is_resolved_by_depth_order() -> None:
    """Across a few sequences some pixels are covered by two objects; the id there is the later (front) one."""
    overlaps = 0
    for index in range(6):
        spec = make_sequence(CONFIG, seed=1, index=index)
        for t in range(CONFIG.frames):
            _, ids = render_frame(spec, t)
            coverages = [object_layer(spec, obj, t)[1] for obj in spec.objects]
            for back in range(len(coverages)):
                for front in range(back + 1, len(coverages)):
                    both = coverages[back] & coverages[front]
                    overlaps += int(both.sum())
                    assert not (ids[both] == back + 1).any()
    assert overlaps > 0


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.*"))}


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    small = SynthConfig(height=48, width=80, frames=5)
    write_benchmark(tmp_path / "a", 2, small, seed=7)
    write_benchmark(tmp_path / "b", 2, small, seed=7)
    write_benchmark(tmp_path / "c", 2, small, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_written_ground_truth_is_the_rendered_partition(tmp_path: Path) -> None:
    small = SynthConfig(height=48, width=80, frames=5)
    names = write_benchmark(tmp_path, 2, small, seed=2)
    layout = DavisLayout(tmp_path)
    for index, name in enumerate(names):
        spec = make_sequence(small, 2, index)
        for t in range(small.frames):
            _, ids = render_frame(spec, t)
            written = read_mask(layout.annotation_dir(name) / f"{t:05d}.png")
            # ids are renumbered (objects visible in frame 0 first), so compare the partitions
            pairs = set(zip(ids.ravel().tolist(), written.ravel().tolist(), strict=True))
            assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
            assert (written[ids == 0] == 0).all()


def test_difficulty_knobs_reach_the_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ino.cli import main

    args = ["synth", "--out", str(tmp_path / "b"), "--sequences", "3", "--frames", "4", "--height", "48"]
    args += ["--width", "64", "--min-objects", "5", "--max-objects", "5", "--max-speed", "0"]
    args += ["--max-rotation-deg", "0", "--max-scale-rate", "0", "--background-speed", "0"]
    assert main(args) == 0
    layout = DavisLayout(tmp_path / "b")
    for name in layout.sequences():
        masks = [read_mask(p) for p in sorted(layout.annotation_dir(name).glob("*.png"))]
        assert all(np.array_equal(m, masks[0]) for m in masks)  # nothing moves
        assert int(masks[0].max()) <= 5 and len(np.unique(masks[0])) >= 3
    assert main(["synth", "--out", str(tmp_path / "c"), "--min-objects", "3", "--max-objects", "2"]) == 2
    assert "--min-objects" in capsys.readouterr().err


def test_photometric_changes_alter_frames_only_and_are_seeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ino.cli import main

    base = ["synth", "--sequences", "2", "--frames", "6", "--height", "48", "--width", "80", "--seed", "4"]
    changes = ["--brightness-drift", "0.3", "--max-blur", "1.5", "--frame-noise", "6"]
    for name, extra in (("plain", []), ("changed", changes), ("again", changes)):
        assert main([*base, "--out", str(tmp_path / name), *extra]) == 0
    plain, changed = DavisLayout(tmp_path / "plain"), DavisLayout(tmp_path / "changed")
    assert _digest(tmp_path / "changed") == _digest(tmp_path / "again")
    for name in plain.sequences():
        for mask in plain.annotation_dir(name).glob("*.png"):  # the same truth: the geometry is untouched
            np.testing.assert_array_equal(read_mask(mask), read_mask(changed.annotation_dir(name) / mask.name))
        brightness = []
        for a, b in zip(plain.image_frames(name), changed.image_frames(name), strict=True):
            x, y = (np.asarray(Image.open(p), dtype=np.float32) for p in (a, b))
            assert np.abs(x - y).mean() > 2  # every frame is changed
            brightness.append(y.mean() / x.mean())
        assert max(brightness) - min(brightness) > 0.2  # the drift spans most of +-0.3 over six frames
    assert main([*base, "--out", str(tmp_path / "bad"), "--brightness-drift", "1.5"]) == 2
    assert "argument --brightness-drift: must be in [0, 1), got 1.5" in capsys.readouterr().err


def test_synth_never_rewrites_another_dataset_nor_its_own_ground_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ino.cli import main

    small = ["--sequences", "2", "--height", "32", "--width", "48"]
    davis = tmp_path / "davis"  # a user's DAVIS copy: its frames, truth and set list
    for part in ("JPEGImages/480p/bear", "Annotations/480p/bear", "ImageSets/2017"):
        (davis / part).mkdir(parents=True)
    Image.new("RGB", (48, 32)).save(davis / "JPEGImages/480p/bear/00000.jpg")
    Image.new("P", (48, 32)).save(davis / "Annotations/480p/bear/00000.png")
    (davis / "ImageSets/2017/val.txt").write_text("bear\n")
    theirs = _digest(davis)
    assert main(["synth", "--out", str(davis), *small, "--frames", "3"]) == 2
    err = capsys.readouterr().err
    assert f"{davis} already holds a dataset (JPEGImages/, Annotations/, ImageSets/) that ino synth did not" in err
    assert err.count("\n") == 1 and _digest(davis) == theirs
    # its own ground truth as --baseline-out: refused before anything is written
    bench = tmp_path / "bench"
    truth = bench / "Annotations" / "480p"
    assert main(["synth", "--out", str(bench), *small, "--frames", "5", "--baseline-out", str(truth)]) == 2
    err = capsys.readouterr().err
    assert f"--baseline-out {truth} lies inside the input data folder" in err and err.count("\n") == 1
    assert not bench.exists()
    # a baseline folder the user made is refused too; a baseline ino made is replaced
    baseline = tmp_path / "baseline"
    (baseline / "synth-001").mkdir(parents=True)
    assert main(["synth", "--out", str(bench), *small, "--frames", "5", "--baseline-out", str(baseline)]) == 2
    assert "synth-001 exists and was not made by ino" in capsys.readouterr().err and not bench.exists()
    (baseline / "synth-001").rmdir()
    for _ in range(2):
        assert main(["synth", "--out", str(bench), *small, "--frames", "5", "--baseline-out", str(baseline)]) == 0
    assert len(list((baseline / "synth-001").glob("*.png"))) == 5
    # its own earlier benchmark is replaced whole: no frame of the longer one lingers
    assert main(["synth", "--out", str(bench), *small, "--frames", "3", "--seed", "1"]) == 0
    layout = DavisLayout(bench)
    assert layout.sequences() == ["synth-000", "synth-001"]
    for name in layout.sequences():
        assert len(layout.image_frames(name)) == len(layout.annotation_frames(name)) == 3


@pytest.mark.parametrize(
    ("form", "theirs"), [("vip", "Annotations/Category_ids/videos1/000000000001.png"), ("jhmdb", "synth_list.txt")]
)
def test_synth_of_every_format_refuses_a_folder_holding_data_it_did_not_write_and_replaces_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str, theirs: str
) -> None:
    from ino.cli import main

    args = ["synth", "--format", form, "--sequences", "2", "--frames", "5", "--height", "48", "--width", "64"]
    user = tmp_path / "user"
    (user / theirs).parent.mkdir(parents=True)
    (user / theirs).write_bytes(b"the user's own")
    assert main([*args, "--out", str(user)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("was not written by ino" in err or "did not write" in err)
    assert (user / theirs).read_bytes() == b"the user's own" and sorted(p.name for p in user.iterdir()) == [
        theirs.split("/")[0]
    ]
    ours = tmp_path / "ours"
    assert main([*args, "--out", str(ours)]) == 0
    first = _digest(ours)
    assert main([*args, "--out", str(ours)]) == 0  # its own earlier benchmark: replaced, identically
    second = _digest(ours)
    for digest in (first, second):
        digest.pop(".ino-files", None)  # the record of the list file: its new modification time
    assert second == first
