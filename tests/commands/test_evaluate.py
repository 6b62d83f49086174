"""`ino synth` + `ino evaluate` end to end: outputs, recomputation, parallel equality and bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.cli import main
from ino.data.davis import read_mask, write_mask
from ino.evaluation.scorer import evaluate

SEQ = "synth-000"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    args = ["synth", "--out", str(root / "davis"), "--sequences", "3", "--frames", "9"]
    assert main([*args, "--height", "48", "--width", "80", "--baseline-out", str(root / "baseline")]) == 0
    return root


@pytest.fixture
def results(bench, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(bench / "baseline", copy)
    return copy


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_outputs_tables_and_files(bench, results, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, _ = _run(capsys, "--davis-root", str(bench / "davis"), "--results", str(results), "--out", str(out))
    assert code == 0
    header = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert stdout.splitlines()[1].split() == header
    assert f"{SEQ}_1" in stdout
    with open(out / "global_results-val.csv") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == header and len(rows) == 2
    values = [float(v) for v in rows[1]]
    assert all(np.isfinite(values)) and 0 < values[0] < 1
    document = json.loads((out / "evaluation-val.json").read_text())
    assert document["protocol"]["frames_scored"].startswith("all annotated frames except")
    assert document["global"]["J&F-Mean"] == pytest.approx(values[0], abs=1e-6)
    assert len(document["sequences"][SEQ]["frames"]) == 7
    with Image.open(out / "per-sequence_jf-val.png") as plot:
        assert plot.size[0] > 300
    with open(out / "per-sequence_results-val.csv") as stream:
        per_object = list(csv.DictReader(stream))
    assert per_object[0]["Sequence"] == f"{SEQ}_1" and set(per_object[0]) == {"Sequence", "J-Mean", "F-Mean"}


def test_results_are_recomputed_not_read_back(bench, results, capsys):
    stale = results / "global_results-val.csv"
    stale.write_text("J&F-Mean\n0.123\n")
    _run(capsys, "--davis-root", str(bench / "davis"), "--results", str(results))
    first = stale.read_text()
    assert "0.123" not in first
    write_mask(results / SEQ / "00004.png", read_mask(bench / "davis" / "Annotations" / "480p" / SEQ / "00004.png"))
    _run(capsys, "--davis-root", str(bench / "davis"), "--results", str(results))
    assert stale.read_text() != first


def test_parallel_and_serial_agree(bench, results):
    serial = evaluate(bench / "davis", results, workers=1)
    parallel = evaluate(bench / "davis", results, workers=2)
    for a, b in zip(serial.sequences, parallel.sequences, strict=True):
        np.testing.assert_array_equal(a.j, b.j)
        np.testing.assert_array_equal(a.f, b.f)


def test_missing_frame_is_an_error_unless_allowed(bench, results, capsys):
    (results / SEQ / "00003.png").unlink()
    code, _, err = _run(capsys, "--davis-root", str(bench / "davis"), "--results", str(results), "--workers", "2")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"sequence '{SEQ}', frame 00003" in err and "missing" in err
    allowed = evaluate(bench / "davis", results, allow_missing=True, workers=1)
    write_mask(results / SEQ / "00003.png", np.zeros((48, 80), np.uint8))
    explicit = evaluate(bench / "davis", results, workers=1)
    np.testing.assert_array_equal(allowed.sequences[0].j, explicit.sequences[0].j)
    np.testing.assert_array_equal(allowed.sequences[0].f, explicit.sequences[0].f)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("size", "is 40x30 (WxH) but the ground truth is 80x48"),
        ("id", "contains object id 9, absent from the first ground-truth frame"),
        ("junk", "cannot read image"),
    ],
)
def test_bad_prediction_frames_give_one_clear_message(bench, results, capsys, damage, expected):
    target = results / SEQ / "00005.png"
    if damage == "size":
        write_mask(target, np.zeros((30, 40), np.uint8))
    elif damage == "id":
        ids = read_mask(target)
        ids[0, 0] = 9
        write_mask(target, ids)
    else:
        target.write_bytes(b"\x89PNG broken")
    code, _, err = _run(capsys, "--davis-root", str(bench / "davis"), "--results", str(results))
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert f"sequence '{SEQ}', frame 00005" in err and expected in err


def test_bad_sequence_lists(bench, tmp_path, results, capsys):
    davis = tmp_path / "davis"
    shutil.copytree(bench / "davis", davis)
    sets = davis / "ImageSets" / "2017"
    (sets / "val.txt").write_text("")
    code, _, err = _run(capsys, "--davis-root", str(davis), "--results", str(results))
    assert code == 2 and "sequence list is empty" in err
    (sets / "val.txt").write_text(f"{SEQ}\nno-such-seq\n")
    code, _, err = _run(capsys, "--davis-root", str(davis), "--results", str(results))
    assert code == 2 and "sequence 'no-such-seq': no annotation folder" in err
    code, _, err = _run(capsys, "--davis-root", str(davis), "--results", str(results), "--set", "test")
    assert code == 2 and "unknown set 'test'" in err


def test_unreadable_ground_truth_names_sequence_and_frame(bench, tmp_path, results, capsys):
    davis = tmp_path / "davis"
    shutil.copytree(bench / "davis", davis)
    (davis / "Annotations" / "480p" / SEQ / "00002.png").write_bytes(b"garbage")
    code, _, err = _run(capsys, "--davis-root", str(davis), "--results", str(results))
    assert code == 2 and f"sequence '{SEQ}', frame 00002" in err and "cannot read image" in err


def test_mask_forms_score_identically(bench, results, tmp_path):
    """DAVIS-2016 0/255 ground truth and grayscale predictions give the same scores as palette PNGs."""
    davis = tmp_path / "davis"
    shutil.copytree(bench / "davis", davis)
    gray = tmp_path / "gray"
    for png in (davis / "Annotations" / "480p" / SEQ).glob("*.png"):
        ids = read_mask(png)
        Image.fromarray(((ids == 1) * 255).astype(np.uint8), mode="L").save(png)
        pred = read_mask(results / SEQ / png.name)
        (gray / SEQ).mkdir(parents=True, exist_ok=True)
        Image.fromarray((pred == 1).astype(np.uint8), mode="L").save(gray / SEQ / png.name)
    binary = evaluate(davis, gray, sequences=[SEQ], workers=1)
    palette = evaluate(bench / "davis", results, sequences=[SEQ], workers=1)
    assert binary.sequences[0].n_objects == 1
    np.testing.assert_array_equal(binary.sequences[0].j[:, 0], palette.sequences[0].j[:, 0])
    np.testing.assert_array_equal(binary.sequences[0].f[:, 0], palette.sequences[0].f[:, 0])


def test_console_entry_point_runs_as_a_module(bench, results):
    completed = subprocess.run(
        [sys.executable, "-m", "ino", "evaluate", "--davis-root", str(bench / "davis"), "--results", str(results)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Global results for val" in completed.stdout


def test_an_unwritable_out_folder_is_one_line(tmp_path: Path, capsys) -> None:
    from ino.data.davis import DavisLayout
    from ino.data.synthetic import SynthConfig, write_benchmark
    from ino.propagation.baselines import write_first_frame_baseline

    names = write_benchmark(tmp_path / "bench", 1, SynthConfig(height=48, width=64, frames=4), seed=0)
    write_first_frame_baseline(DavisLayout(tmp_path / "bench"), names, tmp_path / "results")
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the folder should be: fails for root too
    args = ["evaluate", "--davis-root", str(tmp_path / "bench"), "--results", str(tmp_path / "results")]
    assert main([*args, "--out", str(blocker / "scores"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot create the output folder" in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["file", "below a file"])
def test_an_out_that_cannot_be_written_stops_before_scoring(bench, results, tmp_path, capsys, kind):
    """Scoring may take minutes: --out is checked first. The results miss a frame, so an error about --out (not
    about the missing frame) shows that nothing was scored."""
    (results / SEQ / "00004.png").unlink()
    blocker = tmp_path / "scores.csv"
    blocker.write_text("the user's file\n")
    out = blocker if kind == "file" else blocker / "scores"  # both fail for root too, unlike a read-only folder
    code, _, err = _run(capsys, "--davis-root", str(bench / "davis"), "--results", str(results), "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and str(out) in err and "00004" not in err
    assert blocker.read_text() == "the user's file\n"


@pytest.mark.parametrize("form", ["vip", "jhmdb"])
def test_every_benchmark_checks_its_out_before_scoring(tmp_path, capsys, form):
    """As for DAVIS: an --out that is a file stops at once, and the results (absent here) are never read."""
    data = tmp_path / form
    assert main(["synth", "--format", form, "--out", str(data), "--sequences", "2", "--frames", "5",
                 "--height", "48", "--width", "64", "--quiet"]) == 0  # fmt: skip
    blocker = tmp_path / "scores.json"
    blocker.write_text("the user's file\n")
    root = "--vip-root" if form == "vip" else "--jhmdb-root"
    code, _, err = _run(capsys, root, str(data), "--results", str(tmp_path / "absent"), "--out", str(blocker))
    assert code == 2 and err.count("\n") == 1 and str(blocker) in err and "absent" not in err
    assert blocker.read_text() == "the user's file\n"
