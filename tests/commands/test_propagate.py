"""``ino propagate`` and ``ino.propagate_video`` end to end: DAVIS (+ --evaluate, resume), YouTube-VOS, videos.

A tiny random-init ViT on small synthetic sequences keeps these fast; the real-data tests use davis-dev and the
shared mp4 clips when present.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ino
from ino.cli import main
from ino.data.davis import DavisLayout, read_frame, read_mask, write_mask
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.models.weights import load_backbone, save_backbone
from ino.utils.outputs import mark_made
from ino.utils.viz import OverlayVideoWriter
from support.layouts import ytvos_from_davis
from support.processes import hold_folder

TINY = ["--checkpoint", "random", "--arch", "vit_tiny", "--scale-size", "96", "--radius", "4", "--quiet"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_benchmark(root, sequences=2, config=SynthConfig(height=96, width=160, frames=8), seed=5)
    return root


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["propagate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_davis_mode_writes_every_frame_and_evaluates(synth: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "--davis-root", str(synth), "--out", str(out), "--evaluate", *TINY)
    assert code == 0, err
    layout = DavisLayout(synth)
    for name in layout.sequences():
        written = sorted(p.stem for p in (out / name).glob("*.png"))
        assert written == layout.annotation_frames(name)
        first = read_mask(out / name / "00000.png")
        np.testing.assert_array_equal(first, read_mask(layout.annotation_dir(name) / "00000.png"))
        later = read_mask(out / name / f"{written[-1]}.png")
        assert later.shape == first.shape and later.max() <= first.max()
        assert Image.open(out / name / f"{written[-1]}.png").mode == "P"
    assert "J&F-Mean" in stdout
    scores = json.loads((out / "evaluation-val.json").read_text())
    assert 0.0 < scores["global"]["J&F-Mean"] <= 1.0


def test_resume_skips_finished_redoes_partial_and_refuses_other_settings(synth: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    names = DavisLayout(synth).sequences()
    assert run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *TINY)[0] == 0
    reference = {n: [read_mask(p) for p in sorted((out / n).glob("*.png"))] for n in names}
    # a finished sequence is skipped untouched; a deleted one (as after a crash) is redone identically
    marker = out / names[0] / "00003.png"
    stamp = marker.stat().st_mtime_ns
    state = json.loads((out / ".ino-propagate.json").read_text())
    state["finished"] = [names[0]]
    (out / ".ino-propagate.json").write_text(json.dumps(state))
    mark_made(out / f".partial-{names[1]}")  # the hidden folder a killed run leaves (ino marks what it makes)
    for png in (out / names[1]).glob("*.png"):
        png.unlink()
    loud = [arg for arg in TINY if arg != "--quiet"]  # the skip is logged at INFO, which --quiet hides
    code, _, err = run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *loud)
    assert code == 0 and f"{names[0]}: already done" in err
    assert marker.stat().st_mtime_ns == stamp
    assert not (out / f".partial-{names[1]}").exists()
    for n in names:
        for expected, path in zip(reference[n], sorted((out / n).glob("*.png")), strict=True):
            np.testing.assert_array_equal(read_mask(path), expected)
    assert run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *TINY, "--chunk-size", "64")[0] == 0
    code, _, err = run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *TINY, "--topk", "3")
    assert code == 2 and "config.topk" in err and err.count("\n") == 1


def test_max_frames_truncates_and_scores_only_those(synth: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--davis-root", str(synth), "--out", str(out), "--max-frames", "4", "--evaluate", *TINY]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    name = DavisLayout(synth).sequences()[0]
    assert len(list((out / name).glob("*.png"))) == 4
    protocol = json.loads((out / "evaluation-val.json").read_text())["protocol"]
    assert "first 4" in protocol["frames_scored"]


def test_python_api_equals_the_cli(synth: Path, tmp_path: Path, capsys) -> None:
    name = DavisLayout(synth).sequences()[1]
    frames = [read_frame(p) for p in DavisLayout(synth).image_frames(name)]
    first = DavisLayout(synth).annotation_dir(name) / "00000.png"
    masks = ino.propagate_video(
        frames, first, backbone=load_backbone("random", arch="vit_tiny"), short_side=96, radius=4, device="cpu"
    )
    out = tmp_path / "out"
    exact = ["--feature-dtype", "float32"]  # the CLI's default on a CPU with bf16 is bfloat16, the API's float32
    assert run_cli(capsys, "--davis-root", str(synth), "--sequences", name, "--out", str(out), *TINY, *exact)[0] == 0
    assert len(masks) == len(frames)
    for ids, path in zip(masks, sorted((out / name).glob("*.png")), strict=True):
        np.testing.assert_array_equal(ids, read_mask(path))


def test_ytvos_late_object_chain_outputs_only_annotated_frames_and_zips(synth: Path, tmp_path: Path, capsys) -> None:
    valid, all_frames, (name,) = ytvos_from_davis(synth, tmp_path / "ytvos")
    out = tmp_path / "out"
    args = ["--ytvos-root", str(valid), "--all-frames", str(all_frames), "--out", str(out), *TINY]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    written = sorted(p.name for p in (out / "Annotations" / name).glob("*.png"))
    assert written == sorted(p.with_suffix(".png").name for p in (valid / "JPEGImages" / name).glob("*.jpg"))
    masks = {p: read_mask(out / "Annotations" / name / p) for p in written}
    assert all(m.shape == (96, 160) for m in masks.values())
    assert not (masks["00000.png"] == 2).any() and not (masks["00010.png"] == 2).any()
    assert (masks["00020.png"] == 2).sum() > 1000 and (masks["00030.png"] == 2).any()
    with zipfile.ZipFile(out / "Annotations.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"Annotations/{name}/{w}" for w in written)


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float = 12.0) -> None:
    with OverlayVideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)


def test_video_mode_writes_masks_overlay_and_contact_sheet(synth: Path, tmp_path: Path, capsys) -> None:
    from ino.data.videos import iter_frames, probe_video

    layout = DavisLayout(synth)
    name = layout.sequences()[0]
    frames = [read_frame(p) for p in layout.image_frames(name)]
    clip = tmp_path / "clip.mp4"
    _write_mp4(clip, frames)
    first = layout.annotation_dir(name) / "00000.png"
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--video", str(clip), "--mask", str(first), "--out", str(out), *TINY)
    assert code == 0, err
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == len(frames)
    np.testing.assert_array_equal(read_mask(masks[0]), read_mask(first))
    assert probe_video(out / "overlay.mp4").n_frames == len(frames)
    overlay = next(iter(iter_frames(out / "overlay.mp4")))
    assert overlay.shape == frames[0].shape
    assert np.abs(overlay.astype(int) - frames[0]).mean() > 1  # tinted
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size[0] > 300
    # a frame folder works the same way
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in layout.image_frames(name):
        (folder / path.name).write_bytes(path.read_bytes())
    code, _, err = run_cli(capsys, "--video", str(folder), "--mask", str(first), "--out", str(tmp_path / "o2"), *TINY)
    assert code == 0, err
    assert len(list((tmp_path / "o2" / "masks").glob("*.png"))) == len(frames)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("mask_size", "is 80x50 (WxH) but the frames are 160x96"),
        ("empty_mask", "has no object"),
        ("bad_video", "clip.mp4"),
        ("bad_frame", "00002.jpg"),
        ("other_arch", "vit_small"),
    ],
)
def test_bad_input_gives_one_clear_line(synth: Path, tmp_path: Path, capsys, damage: str, expected: str) -> None:
    layout = DavisLayout(synth)
    name = layout.sequences()[0]
    clip, mask = tmp_path / "clip.mp4", tmp_path / "mask.png"
    _write_mp4(clip, [read_frame(p) for p in layout.image_frames(name)])
    write_mask(mask, read_mask(layout.annotation_dir(name) / "00000.png"))
    args = ["--video", str(clip), "--mask", str(mask), "--out", str(tmp_path / "out"), *TINY]
    if damage == "mask_size":
        write_mask(mask, np.ones((50, 80), dtype=np.uint8))
    elif damage == "empty_mask":
        write_mask(mask, np.zeros((96, 160), dtype=np.uint8))
    elif damage == "bad_video":
        clip.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "bad_frame":
        copy = tmp_path / "copy"
        for path in [*layout.image_frames(name), *layout.annotation_dir(name).glob("*.png")]:
            target = copy / path.relative_to(synth)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        (copy / "ImageSets" / "2017").mkdir(parents=True)
        (copy / "ImageSets" / "2017" / "val.txt").write_text(f"{name}\n")
        (copy / "JPEGImages" / "480p" / name / "00002.jpg").write_bytes(b"not a jpeg")
        args = ["--davis-root", str(copy), "--out", str(tmp_path / "out"), *TINY]
    elif damage == "other_arch":
        weights = tmp_path / "tiny.safetensors"
        save_backbone(load_backbone("random", arch="vit_tiny"), weights)
        args = [*args[:6], "--checkpoint", str(weights), "--arch", "vit_small", "--quiet"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert expected in err, err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "out" / "masks").exists()


def test_real_davis_sequence_with_evaluate(davis_dev: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--davis-root", str(davis_dev), "--sequences", "surf", "--max-frames", "6", "--evaluate"]
    code, stdout, err = run_cli(capsys, *args, "--out", str(out), *TINY)
    assert code == 0, err
    assert "surf_1" in stdout
    jf = json.loads((out / "evaluation-val.json").read_text())["global"]["J&F-Mean"]
    assert 0.2 < jf <= 1.0


def test_real_mp4_clip(videos_dir: Path, tmp_path: Path, capsys) -> None:
    from ino.data.videos import probe_video

    clip = sorted(videos_dir.glob("davis16-*.mp4"))[0]
    info = probe_video(clip)
    mask = np.zeros((info.height, info.width), dtype=np.uint8)
    mask[info.height // 3 : info.height // 2, info.width // 3 : info.width // 2] = 1
    write_mask(tmp_path / "first.png", mask)
    args = ["--video", str(clip), "--mask", str(tmp_path / "first.png"), "--max-frames", "5"]
    code, _, err = run_cli(capsys, *args, "--out", str(tmp_path / "out"), *TINY)
    assert code == 0, err
    assert len(list((tmp_path / "out" / "masks").glob("*.png"))) == 5


def test_missing_ytvos_folders_give_one_clear_line(synth: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "--ytvos-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), *TINY)
    assert code == 2 and "nowhere/Annotations: no such folder" in err and err.count("\n") == 1
    valid, _, (name,) = ytvos_from_davis(synth, tmp_path / "ytvos")
    args = ["--ytvos-root", str(valid), "--all-frames", str(tmp_path / "none"), "--out", str(tmp_path / "o2"), *TINY]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and f"none/JPEGImages/{name}: no such folder" in err and err.count("\n") == 1


def test_results_never_replace_what_ino_did_not_make_nor_land_inside_the_dataset(
    synth: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    name = DavisLayout(synth).sequences()[0]
    (out / name).mkdir(parents=True)
    (out / name / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *TINY)
    assert code == 2 and "was not made by ino" in err and err.count("\n") == 1
    assert (out / name / "notes.txt").read_text() == "mine"
    annotations = synth / "Annotations" / "480p"
    before = {p: p.read_bytes() for p in annotations.rglob("*.png")}
    code, _, err = run_cli(capsys, "--davis-root", str(synth), "--out", str(annotations), *TINY)
    assert code == 2 and "lies inside the input data folder" in err
    assert before == {p: p.read_bytes() for p in annotations.rglob("*.png")}


def test_a_second_run_into_the_same_folder_stops_at_once(synth: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    other = hold_folder(out, "ino propagate")
    try:
        code, _, err = run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *TINY)
    finally:
        other.kill()
        other.wait()
    assert code == 2 and f"is in use by pid {other.pid} (ino propagate) since" in err and err.count("\n") == 1
    assert not any(p.suffix == ".png" for p in out.rglob("*"))
    assert run_cli(capsys, "--davis-root", str(synth), "--out", str(out), *TINY)[0] == 0  # the dead run's lock is free


def test_a_patch_16_backbone_from_training_is_propagated_and_recorded(synth: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--davis-root", str(synth), "--out", str(out), "--scale-size", "96", "--radius", "2", "--quiet"]
    code, _, err = run_cli(capsys, *args, "--checkpoint", "random", "--arch", "vit_tiny", "--patch-size", "16")
    assert code == 0, err
    state = json.loads((out / ".ino-propagate.json").read_text())["settings"]
    assert (state["arch"], state["patch_size"], state["config"]["size_multiple"]) == ("vit_tiny", 16, 16)
    name = DavisLayout(synth).sequences()[0]
    assert read_mask(sorted((out / name).glob("*.png"))[-1]).shape == (96, 160)
    # another backbone (random too, patch 8 this time) is refused in the same folder: its results would mix
    code, _, err = run_cli(capsys, *args, "--checkpoint", "random", "--arch", "vit_tiny", "--patch-size", "8")
    assert code == 2 and "patch_size" in err


def test_a_failed_video_run_leaves_no_playable_partial_overlay(synth: Path, tmp_path: Path, capsys) -> None:
    layout = DavisLayout(synth)
    name = layout.sequences()[0]
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, path in enumerate(layout.image_frames(name)):
        frame = read_frame(path)
        if index == 5:
            frame = frame[:64]  # a frame of another size: the run fails on it, after five frames were written
        Image.fromarray(frame).save(folder / f"{index:05d}.png")
    first = layout.annotation_dir(name) / "00000.png"
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--video", str(folder), "--mask", str(first), "--out", str(out), *TINY)
    assert code == 2 and "differs from" in err and err.count("\n") == 1
    assert not (out / "overlay.mp4").exists() and not (out / "masks").exists()


@pytest.mark.parametrize("native_bf16", [True, False])
def test_the_cpu_default_precision_follows_the_cpu_and_float32_can_be_forced(
    synth: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, native_bf16: bool
) -> None:
    import ino.utils.hardware

    monkeypatch.setattr(ino.utils.hardware, "cpu_has_native_bf16", lambda: native_bf16)
    name = DavisLayout(synth).sequences()[0]
    runs = {"default": [], "forced": ["--feature-dtype", "float32"]}
    for label, extra in runs.items():
        out = tmp_path / label
        code, stdout, err = run_cli(capsys, "--davis-root", str(synth), "--sequences", name, "--out", str(out), *TINY,
                                    "--device", "cpu", *extra)  # fmt: skip
        assert code == 0, err
        chosen = json.loads((out / ".ino-propagate.json").read_text())["settings"]["config"]["feature_dtype"]
        expected = "bfloat16" if native_bf16 and label == "default" else "float32"
        assert chosen == expected and f"features {expected}" in stdout
