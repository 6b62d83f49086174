"""The run state of a results folder and the split of a job's sequences over ranks (no processes here; the
two-process runs are in tests/commands/test_propagate_ranks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ino.errors import InoError
from ino.propagation.run_state import STATE_FILE, RunState, split_by_frames


def test_the_split_gives_the_largest_first_to_the_least_loaded_rank() -> None:
    frames = {"a": 10, "b": 90, "c": 40, "d": 50, "e": 10, "f": 5}
    shares = split_by_frames(list(frames), frames, 2)
    assert shares == [["b", "a", "f"], ["d", "c", "e"]]  # ties go to the lower rank
    loads = [sum(frames[n] for n in share) for share in shares]
    assert loads == [105, 100]
    assert sorted(n for share in shares for n in share) == sorted(frames)  # every sequence once
    assert split_by_frames(list(frames), frames, 1) == [["b", "d", "c", "a", "e", "f"]]
    assert split_by_frames(["x"], {"x": 3}, 3) == [["x"], [], []]  # more ranks than sequences: some idle


def test_a_killed_ranks_record_is_folded_in_and_other_settings_are_refused(tmp_path: Path) -> None:
    settings = {"backbone": "random", "config": {"radius": 4}}
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    first = RunState(tmp_path, settings)
    first.finish("a")
    killed = RunState(tmp_path, settings, shard=1)  # a rank of a job that died after finishing "b"
    killed.finish("b")
    assert json.loads((tmp_path / STATE_FILE).read_text())["finished"] == ["a"]
    resumed = RunState(tmp_path, settings)
    assert resumed.is_finished("a", tmp_path / "a") and resumed.is_finished("b", tmp_path / "b")
    assert not resumed.is_finished("c", tmp_path / "c")
    resumed.consolidate()
    assert json.loads((tmp_path / STATE_FILE).read_text())["finished"] == ["a", "b"]
    assert not list(tmp_path.glob(".ino-propagate.rank*"))
    RunState(tmp_path, settings, shard=0).finish("c")
    with pytest.raises(InoError, match=r"other settings \(changed: config.radius\)"):
        RunState(tmp_path, {"backbone": "random", "config": {"radius": 5}})
    (tmp_path / ".ino-propagate.rank3.json").write_text("{not json")
    with pytest.raises(InoError, match=r"rank3.json: unreadable run state"):
        RunState(tmp_path, settings)


def test_a_folder_from_before_a_new_setting_resumes_at_its_default_and_is_refused_otherwise(tmp_path: Path) -> None:
    """A setting added to PropagationConfig defaults to the old behaviour: an older folder, which could not record
    it, resumes under that default and is refused, naming it, under any other value."""
    import dataclasses

    from ino.propagation.presets import SPEED_ONLY, PropagationConfig

    now = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(PropagationConfig()))).items()
           if k not in SPEED_ONLY}  # fmt: skip
    older = {k: v for k, v in now.items() if k not in ("window", "pad_context")}  # written before those existed
    (tmp_path / "a").mkdir()
    state = {"settings": {"backbone": "random", "config": older}, "finished": ["a"]}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert RunState(tmp_path, {"backbone": "random", "config": now}).is_finished("a", tmp_path / "a")
    with pytest.raises(InoError, match=r"other settings \(changed: config.window\)"):
        RunState(tmp_path, {"backbone": "random", "config": {**now, "window": "disk"}})
