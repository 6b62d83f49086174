"""``ino propagate --jhmdb-root`` / ``--vip-root`` and ``ino evaluate --jhmdb-root`` end to end: outputs, scores,
resume (finished videos untouched, other settings refused), ``--max-frames`` (also ``ino evaluate``'s for DAVIS),
and bad input as one line.

A random-init ViT-Tiny/8 at a 64-pixel short side on small ``ino synth`` data keeps each run to seconds. The
presets are explicit (``ino-davis``): the tasks' own defaults (``cropmae-jhmdb``, ``cropmae-vip``) come with the
preset table of another branch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.cli import main
from ino.data.davis import DavisLayout
from ino.data.jhmdb import JhmdbLayout, keypoints_path, read_keypoints, write_keypoints
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from ino.data.vip import VipLayout
from ino.evaluation.pck import evaluate_pck
from ino.propagation.baselines import write_first_frame_baseline
from ino.propagation.keypoint_runs import SHEET_COLUMNS, SHEET_FRAMES
from ino.propagation.keypoints import KEYPOINT_PRESETS, GridGeometry, decode_joints, encode_joints
from ino.propagation.presets import resolve_config, target_size

TINY = ["--checkpoint", "random", "--arch", "vit_tiny", "--preset", "ino-davis", "--scale-size", "64",
        "--device", "cpu", "--feature-dtype", "float32"]  # fmt: skip


@pytest.fixture(scope="module")
def jhmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five videos of 6 frames at 60 x 80 (one of them a single frame), and three broken ones off the list."""
    root = tmp_path_factory.mktemp("jhmdb")
    write_jhmdb_benchmark(root, videos=5, config=JhmdbSynthConfig(height=60, width=80, frames=6), broken=True)
    return root


@pytest.fixture(scope="module")
def vip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three videos of 7 frames at 60 x 100, every 2nd annotated (the last one: only its first)."""
    root = tmp_path_factory.mktemp("vip")
    write_vip_benchmark(root, videos=3, config=SynthVipConfig(height=60, width=100, frames=7, key_every=2), seed=3)
    return root


def run(capsys: pytest.CaptureFixture[str], command: str, *args: str) -> tuple[int, str, str]:
    code = main([command, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_jhmdb_writes_keypoints_and_sheets_and_scores_pck(jhmdb: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    listed = jhmdb / LIST_NAME
    code, stdout, err = run(capsys, "propagate", "--jhmdb-root", str(jhmdb), "--list", str(listed), "--out", str(out),
                            "--evaluate", "--quiet", *TINY)  # fmt: skip
    assert code == 0, err
    layout = JhmdbLayout(jhmdb)
    names = layout.videos(listed)
    assert f"wrote {len(names)} video(s)" in stdout and "| **mean** |" in stdout
    geometry = GridGeometry((60, 80), target_size(60, 80, resolve_config("ino-davis", short_side=64)), 8)
    spec = KEYPOINT_PRESETS["cropmae"]  # any preset but crw-*: CropMAE's top-5
    for name in names:
        truth = layout.joints(name).joints
        predicted = read_keypoints(keypoints_path(out, name))
        assert predicted.shape == truth.shape
        np.testing.assert_array_equal(
            predicted[0], decode_joints(encode_joints(truth[0], geometry, spec), geometry, spec)
        )
        shown = min(SHEET_FRAMES, len(truth))
        columns = min(SHEET_COLUMNS, shown)
        assert Image.open(keypoints_path(out, name, ".png")).size == (80 * columns, 60 * -(-shown // columns))
    scores = json.loads((out / "pck.json").read_text())
    assert scores["protocol"]["videos"] == names and 0 <= scores["global"]["PCK@0.5"] <= 100
    assert not (out / "broken").exists()  # the broken videos are off the list


def test_jhmdb_resume_skips_finished_videos_and_refuses_other_settings(jhmdb: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["propagate", "--jhmdb-root", str(jhmdb), "--list", str(jhmdb / LIST_NAME), "--out", str(out), *TINY]
    assert run(capsys, *args, "--no-overlay", "--quiet")[0] == 0
    names = JhmdbLayout(jhmdb).videos(jhmdb / LIST_NAME)
    assert not list(out.rglob("*.png"))
    kept, lost = keypoints_path(out, names[0]), keypoints_path(out, names[1])
    stamp, before = kept.stat().st_mtime_ns, lost.read_bytes()
    lost.unlink()  # as if lost after a crash: redone identically, the others skipped
    code, _, err = run(capsys, *args, "--no-overlay")
    assert code == 0 and f"{names[0]}: already done" in err
    assert kept.stat().st_mtime_ns == stamp and lost.read_bytes() == before
    for change, key in ((["--keypoint-topk", "2"], "keypoints.topk"), (["--max-frames", "3"], "max_frames"),
                        ([], "overlay"), (["--no-overlay", "--radius", "3"], "config.radius")):  # fmt: skip
        code, _, err = run(capsys, *args, *change, "--quiet")
        assert code == 2 and f"changed: {key}" in err and err.count("\n") == 1
    assert kept.stat().st_mtime_ns == stamp


def test_jhmdb_max_frames_runs_and_scores_the_first_frames(jhmdb: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, _, err = run(capsys, "propagate", "--jhmdb-root", str(jhmdb), "--list", str(jhmdb / LIST_NAME),
                       "--out", str(out), "--max-frames", "3", "--evaluate", "--quiet", *TINY)  # fmt: skip
    assert code == 0, err
    name = JhmdbLayout(jhmdb).videos(jhmdb / LIST_NAME)[0]
    assert read_keypoints(keypoints_path(out, name)).shape[0] == 3
    protocol = json.loads((out / "pck.json").read_text())["protocol"]
    assert protocol["max_frames"] == 3 and "first 3" in protocol["frames_scored"]
    code, _, err = run(capsys, "evaluate", "--jhmdb-root", str(jhmdb), "--results", str(out), "--list",
                       str(jhmdb / LIST_NAME), "--out", str(tmp_path / "full"))  # fmt: skip
    assert code == 2 and "3 frame(s) of keypoints but the ground truth has 6" in err and err.count("\n") == 1


def test_vip_writes_annotated_frames_scores_miou_and_resumes(vip: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["propagate", "--vip-root", str(vip), "--out", str(out), "--quiet", *TINY]
    code, stdout, err = run(capsys, *args, "--max-frames", "4", "--evaluate")
    assert code == 0, err
    layout = VipLayout(vip)
    for name in layout.videos():
        annotated = [p.name for p in layout.video(name).annotations if int(p.stem) <= 4]
        assert sorted(p.name for p in (out / name).glob("*.png")) == annotated
        assert Image.open(out / name / annotated[0]).mode == "L" and Image.open(out / name / annotated[0]).size == (
            100,
            60,
        )
    assert "mIoU" in stdout
    report = json.loads((out / "vip_results-val.json").read_text())
    assert report["protocol"]["max_frames"] == 4 and report["protocol"]["n_frames"] == 2 + 2 + 1
    stamp = (out / "videos1" / "000000000001.png").stat().st_mtime_ns
    assert run(capsys, *args, "--max-frames", "4")[0] == 0
    assert (out / "videos1" / "000000000001.png").stat().st_mtime_ns == stamp
    code, _, err = run(capsys, *args)
    assert code == 2 and "changed: max_frames" in err and err.count("\n") == 1


def test_evaluate_scores_jhmdb_keypoint_files(jhmdb: Path, tmp_path: Path, capsys) -> None:
    results = tmp_path / "truth"
    layout = JhmdbLayout(jhmdb)
    names = layout.videos(jhmdb / LIST_NAME)
    for name in names:
        write_keypoints(keypoints_path(results, name), name, layout.joints(name).joints)
    code, stdout, err = run(capsys, "evaluate", "--jhmdb-root", str(jhmdb), "--results", str(results), "--list",
                            str(jhmdb / LIST_NAME), "--quiet")  # fmt: skip
    assert code == 0, err
    scores = json.loads((results / "pck.json").read_text())
    assert scores["global"] == evaluate_pck(jhmdb, results, jhmdb / LIST_NAME).global_results()
    assert min(scores["global"].values()) > 99  # not 100: a frame with one joint in view has a zero-length box
    assert f"| **mean** | {scores['global']['PCK@0.1']:.2f} |" in stdout and scores["protocol"]["max_frames"] is None
    code, _, err = run(capsys, "evaluate", "--jhmdb-root", str(jhmdb), "--results", str(results), "--sequences",
                       names[0], "--max-frames", "2", "--out", str(tmp_path / "two"), "--quiet")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "two" / "pck.json").read_text())["protocol"]["videos"] == [names[0]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["propagate", "--jhmdb-root", "J", "--vip-root", "V", *TINY], "give exactly one of --davis-root"),
        (["propagate", "--davis-root", "J", "--list", "x.txt", *TINY], "--list belongs to --jhmdb-root or --vip-root"),
        (["propagate", "--vip-root", "V", "--keypoint-topk", "2", *TINY], "belong to --jhmdb-root"),
        (["propagate", "--vip-root", "V", "--no-overlay", *TINY], "belong to --jhmdb-root"),
        (["propagate", "--jhmdb-root", "J", "--list", "BROKEN", *TINY], "frame 00003.png is missing"),
        (["evaluate", "--jhmdb-root", "J", "--results", "J", "--allow-missing"], "--allow-missing applies to DAVIS"),
        (["evaluate", "--davis-root", "J", "--results", "J", "--list", "x.txt"], "--list belongs to --jhmdb-root"),
    ],
)
def test_bad_input_is_one_line_before_any_work(
    jhmdb: Path, vip: Path, tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    broken = tmp_path / "broken.txt"
    broken.write_text("broken/missing_frame\n")
    values = {"J": str(jhmdb), "V": str(vip), "BROKEN": str(broken)}
    out = ["--out", str(tmp_path / "out")]
    code, _, err = run(capsys, *[values.get(a, a) for a in args], *out)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_evaluate_max_frames_scores_a_truncated_davis_run(tmp_path: Path, capsys) -> None:
    root, results = tmp_path / "davis", tmp_path / "baseline"
    names = write_benchmark(root, sequences=1, config=SynthConfig(height=48, width=80, frames=7))
    write_first_frame_baseline(DavisLayout(root), names, results)
    for late in sorted((results / names[0]).glob("*.png"))[4:]:
        late.unlink()  # what ino propagate --max-frames 4 leaves
    code, _, err = run(capsys, "evaluate", "--davis-root", str(root), "--results", str(results), "--quiet")
    assert code == 2 and "00004.png is missing" in err
    code, _, err = run(capsys, "evaluate", "--davis-root", str(root), "--results", str(results), "--max-frames", "4",
                       "--quiet")  # fmt: skip
    assert code == 0, err
    assert "first 4" in json.loads((results / "evaluation-val.json").read_text())["protocol"]["frames_scored"]
