"""The JHMDB and VIP tasks of ``ino suite`` with their real runs (``propagate_jhmdb``, ``propagate_vip``): the run's
videos (JHMDB: those of ``--jhmdb-list``), the scorers' numbers in the table, a quick check on both; and a task
whose preset this version lacks stops before any work. The presets are given (``ino-davis``): the tasks' defaults
come with the preset table of another branch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ino.data.jhmdb import keypoints_path, read_keypoints
from ino.data.synthetic_jhmdb import JhmdbSynthConfig, write_jhmdb_benchmark
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from ino.suite.tasks import PROTOCOLS

PRESETS = ["--jhmdb-preset", "ino-davis", "--vip-preset", "ino-davis"]


def test_jhmdb_and_vip_run_on_the_list_score_and_take_a_quick_check(one_model, tmp_path: Path, suite) -> None:
    jhmdb, vip = tmp_path / "jhmdb", tmp_path / "vip"
    names = write_jhmdb_benchmark(jhmdb, videos=4, config=JhmdbSynthConfig(height=60, width=80, frames=5))
    write_vip_benchmark(vip, videos=2, config=SynthVipConfig(height=60, width=100, frames=5, key_every=2))
    listed = tmp_path / "two.txt"
    listed.write_text(f"{names[0]}\n{names[2]}\n")
    out = tmp_path / "out"
    roots = ["--jhmdb-root", str(jhmdb), "--jhmdb-list", str(listed), "--vip-root", str(vip), *PRESETS]
    code, stdout, err = suite(*one_model, *roots, "--max-frames", "3", "--out", str(out), "--quiet")
    assert code == 0, err
    doc = json.loads((out / "suite.json").read_text())
    rows = {row["task"]: row for row in doc["rows"]}
    assert doc["quick_check"] == 3 and "Quick check: only the first 3 frames" in stdout
    folder = out / "random-vit_tiny"
    assert sorted(rows["jhmdb"]["per_item"]) == sorted([names[0], names[2]])
    assert (
        rows["jhmdb"]["metrics"]["PCK@0.1"]
        == json.loads((folder / "jhmdb" / "pck.json").read_text())["global"]["PCK@0.1"]
    )
    assert read_keypoints(keypoints_path(folder / "jhmdb", names[0])).shape[0] == 3
    assert not keypoints_path(folder / "jhmdb", names[1]).exists()
    vip_scores = json.loads((folder / "vip" / "vip_results-val.json").read_text())
    assert rows["vip"]["metrics"]["mIoU"] == pytest.approx(100 * vip_scores["global"]["mIoU"])
    assert vip_scores["protocol"]["max_frames"] == 3
    assert sorted(p.name for p in (folder / "vip" / "videos1").glob("*.png")) == [
        "000000000001.png",
        "000000000003.png",
    ]
    record = json.loads((folder / "jhmdb" / "suite-task.json").read_text())
    assert record["settings"]["options"] == {"list_file": str(listed.resolve())}


def test_a_task_whose_preset_is_missing_stops_before_any_work(
    one_model, tmp_path: Path, suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PROTOCOLS["ino"], "vip", "absent-vip")
    code, _, err = suite(*one_model, "--vip-root", str(tmp_path / "vip"), "--out", str(tmp_path / "out"))
    assert code == 2 and "the VIP parts task's preset 'absent-vip' is not in this version" in err
    assert "--vip-preset" in err and err.count("\n") == 1 and not (tmp_path / "out").exists()
    code, _, err = suite(*one_model, "--davis-root", str(tmp_path), "--jhmdb-list", "x", "--out", str(tmp_path / "out"))
    assert code == 2 and "--jhmdb-list belongs to --jhmdb-root" in err


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("ino", {"davis": "ino-davis", "jhmdb": "cropmae-jhmdb", "vip": "cropmae-vip"}),
        ("crw", {"davis": "crw-davis", "jhmdb": "crw-jhmdb", "vip": "crw-vip"}),
        ("cropmae", {"davis": "cropmae-davis", "jhmdb": "cropmae-jhmdb", "vip": "cropmae-vip"}),
    ],
)
def test_the_protocol_picks_every_tasks_preset_and_a_task_preset_wins(
    tmp_path: Path, protocol: str, expected: dict[str, str]
) -> None:
    from ino.cli import build_parser
    from ino.commands.suite import _tasks

    roots = [f"--{name}-root={tmp_path / name}" for name in expected]
    argv = ["suite", "--checkpoint", "random", "--out", str(tmp_path / "out"), "--protocol", protocol, *roots]
    assert {spec.name: spec.preset for spec in _tasks(build_parser().parse_args(argv))} == expected
    chosen = _tasks(build_parser().parse_args([*argv, "--vip-preset", "ino-davis"]))
    assert {spec.name: spec.preset for spec in chosen}["vip"] == "ino-davis"
