"""A task plugs into the suite through its registry entry: a run with ``propagate_davis``'s shape, a scorer, a
card. Here VIP and JHMDB get stand-in runs that write the ground truth, so the table must show mIoU and PCK of 100
from the real scorers, and the published rows of those tasks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ino.data.jhmdb import JhmdbLayout, keypoints_path, write_keypoints
from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from ino.data.vip import IGNORE_ID, VipLayout, read_category_ids, write_category_ids
from ino.propagation.api import VideoPropagator
from ino.suite.tasks import TASKS
from ino.utils.distributed import Distributed

seen: dict[str, dict[str, object]] = {}


def ground_truth_vip(
    root: Path, out: Path, propagator: VideoPropagator, settings: dict, *, progress: bool, dist: Distributed | None
) -> list[str]:
    """A VIP run's shape: every annotated frame's class ids as ``<out>/<video>/<frame>.png``."""
    seen["vip"] = {"settings": settings, "propagator": propagator, "dist": dist}
    layout = VipLayout(root)
    names = layout.videos()
    for name in names:
        for annotation in layout.video(name).annotations:
            ids = read_category_ids(annotation)
            write_category_ids(out / name / annotation.name, np.where(ids == IGNORE_ID, 0, ids))
    return names


def ground_truth_jhmdb(
    root: Path, out: Path, propagator: VideoPropagator, settings: dict, *, progress: bool, dist: Distributed | None
) -> list[str]:
    """A JHMDB run's shape: every video's joints as ``<out>/<action>/<video>.json``."""
    seen["jhmdb"] = {"settings": settings}
    layout = JhmdbLayout(root)
    names = layout.videos(root / LIST_NAME)
    for name in names:
        write_keypoints(keypoints_path(out, name), name, layout.joints(name).joints)
    return names


@pytest.fixture
def plugged(monkeypatch: pytest.MonkeyPatch) -> None:
    """VIP and JHMDB with the stand-in runs."""
    for name, run in (("vip", ground_truth_vip), ("jhmdb", ground_truth_jhmdb)):
        monkeypatch.setitem(TASKS, name, dataclasses.replace(TASKS[name], propagate=run))


def test_vip_and_jhmdb_plug_in_with_the_run_interface(plugged, one_model, tmp_path: Path, suite) -> None:
    vip, jhmdb = tmp_path / "vip", tmp_path / "jhmdb"
    write_vip_benchmark(vip, videos=2, config=SynthVipConfig(height=60, width=100, frames=6, key_every=2))
    write_jhmdb_benchmark(jhmdb, videos=3, config=JhmdbSynthConfig(height=60, width=80, frames=5))
    out = tmp_path / "out"
    code, stdout, err = suite(*one_model, "--vip-root", str(vip), "--jhmdb-root", str(jhmdb), "--out", str(out))
    assert code == 0, err
    rows = {r["task"]: r for r in json.loads((out / "suite.json").read_text())["rows"]}
    assert rows["vip"]["metrics"] == {"mIoU": 100.0} and set(rows["vip"]["per_item"].values()) == {100.0}
    assert rows["jhmdb"]["metrics"] == {"PCK@0.1": 100.0, "PCK@0.2": 100.0}
    assert (out / "random-vit_tiny" / "vip" / "vip_results-val.json").is_file()  # the scorers' own reports
    assert (out / "random-vit_tiny" / "jhmdb" / "pck.json").is_file()
    # the run got the suite's propagator and the settings a run state records; no torchrun here
    assert isinstance(seen["vip"]["propagator"], VideoPropagator) and seen["vip"]["dist"].world_size == 1
    settings = seen["vip"]["settings"]
    assert settings["preset"] == "cropmae-vip" and settings["backbone"] == "random(seed=0)"
    markdown = (out / "suite.md").read_text()
    assert "| random-vit_tiny | 100.00 | 100.00 |" in stdout  # the overview: JHMDB PCK@0.1, VIP mIoU
    assert "| quoted: CropMAE ViT-S/16 (ImageNet) | 43.6 | - |" in markdown  # JHMDB: PCK@0.1 only published
    assert "| quoted: CropMAE ViT-S/16 (Kinetics-400) | 33.7 |" in markdown
    assert "every annotated frame, the first included (eval_vip.py)" in markdown
