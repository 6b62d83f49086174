"""What a training run survives, shown with real processes and signals: SIGTERM, SIGINT, kill -9, damaged and
non-finite checkpoints, a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ino.configs.loading import load_config
from ino.errors import InoError
from ino.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from ino.training.log import read_log
from ino.training.loop import train
from support.video_factory import write_clip


def command(clips: Path, out: Path, steps: int, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "ino", "train", "--config", "tiny", "--data", str(clips), "--output-dir", str(out)]
    return [*argv, "--run.max-steps", str(steps), "--run.deterministic", "true", "--quiet", "--device", "cpu", *extra]


def start_and_wait_for_steps(argv: list[str], out: Path, steps: int) -> subprocess.Popen:
    """Start a training process and return once its log shows at least ``steps`` steps."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(read_log(out)) < steps:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run logged too few steps"
        time.sleep(0.02)
    return process


def final_state(out: Path) -> dict:
    return load_checkpoint(list_checkpoints(out)[-1])


@pytest.mark.slow
@pytest.mark.parametrize(("sent", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_step_saves_and_exits_then_the_run_resumes_exactly(
    clips: Path, tmp_path: Path, sent: signal.Signals, status: int
) -> None:
    straight = tmp_path / "straight"
    subprocess.run(command(clips, straight, 12), check=True, capture_output=True)
    out = tmp_path / "interrupted"
    process = start_and_wait_for_steps(command(clips, out, 60, "--run.checkpoint-every", "1000"), out, 3)
    process.send_signal(sent)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    stopped = len(read_log(out))
    assert f"stopped by {sent.name} after step {stopped}; saved" in err and "Traceback" not in err
    assert [p.name for p in list_checkpoints(out)] == [f"step-{stopped:08d}.pt"]  # only the signal saved
    assert stopped < 12
    subprocess.run(command(clips, out, 12), check=True, capture_output=True)
    assert [line["step"] for line in read_log(out)] == list(range(12))  # every step logged once
    a, b = final_state(straight), final_state(out)
    for part in ("student", "teacher", "loss"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"


@pytest.mark.slow
def test_kill_9_after_a_checkpoint_resumes_without_repeating_log_lines(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = start_and_wait_for_steps(command(clips, out, 60, "--run.checkpoint-every", "3"), out, 5)
    process.kill()
    process.wait()
    last = int(list_checkpoints(out)[-1].stem.split("-")[1])
    assert len(read_log(out)) >= last  # steps after the checkpoint were logged by the killed run
    subprocess.run(command(clips, out, 8, "--run.checkpoint-every", "3"), check=True, capture_output=True)
    assert [line["step"] for line in read_log(out)] == list(range(8))


def state_of(clips: Path, out: Path) -> dict:
    config = load_config(["tiny"], {"data": [str(clips)], "output_dir": str(out), "run": {"max_steps": 2}})
    train(config, progress=False, device="cpu")
    return load_checkpoint(list_checkpoints(out)[-1])


def flip_a_byte_inside_a_tensor(path: Path, tensor: torch.Tensor) -> None:
    """Damage a checkpoint where torch itself does not look: inside a stored tensor (zip entries are uncompressed)."""
    data = bytearray(path.read_bytes())
    position = data.find(tensor.numpy().tobytes()[:64]) + 1000
    assert position > 1000
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_intact_one(
    clips: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    state = state_of(clips, out)
    save_checkpoint(out, {**state, "step": 3}, 3, keep_last=5)
    newest = save_checkpoint(out, {**state, "step": 4}, 4, keep_last=5)
    flip_a_byte_inside_a_tensor(newest, state["student"]["head.mlp.0.weight"])
    with pytest.raises(InoError, match="do not match the checksum"):
        load_checkpoint(newest)
    config = load_config(["tiny"], {"data": [str(clips)], "output_dir": str(out), "run": {"max_steps": 5}})
    result = train(config, progress=False, device="cpu")
    assert result.step == 5 and any("falling back" in r.message and newest.name in r.message for r in caplog.records)
    # resumed from the intact step-3 checkpoint (made from the step-2 state here): steps 3 and 4 were trained
    assert [line["step"] for line in read_log(out)] == [0, 1, 3, 4]
    from ino.cli import main

    save_checkpoint(out, {**state, "step": 9}, 9, keep_last=5)
    damaged = out / "checkpoints" / "step-00000009.pt"
    flip_a_byte_inside_a_tensor(damaged, state["student"]["head.mlp.0.weight"])
    assert main(["export", "--checkpoint", str(damaged), "--out", str(tmp_path / "b.safetensors")]) == 2
    assert not (tmp_path / "b.safetensors").exists()
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    with pytest.raises(InoError, match="not a readable training checkpoint"):
        load_checkpoint(newest)


def test_non_finite_weights_are_never_saved_and_temporaries_are_cleaned(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    state = state_of(clips, out)
    stale = out / "checkpoints" / ".step-00000007.pt.abc123"  # left by a save that was killed
    stale.write_bytes(b"partial")
    broken = {**state, "student": {**state["student"]}}
    key = next(iter(broken["student"]))
    broken["student"][key] = torch.full_like(broken["student"][key], float("nan"))
    with pytest.raises(InoError, match="hold NaN or infinity"):
        save_checkpoint(out, broken, 7, keep_last=3)
    assert not (out / "checkpoints" / "step-00000007.pt").exists()
    save_checkpoint(out, state, 8, keep_last=3)
    assert not stale.exists()


def test_a_diverging_run_stops_naming_the_last_good_checkpoint(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    changes = {"data": [str(clips)], "output_dir": str(out), "optim": {"base_lr": 1e5, "warmup_epochs": 0}}
    changes["run"] = {"checkpoint_every": 1, "max_steps": 20}
    with pytest.raises(InoError, match=r"the last good checkpoint is .*step-\d{8}\.pt|none yet") as caught:
        train(load_config(["tiny"], changes), progress=False, device="cpu")
    assert "non-finite" in str(caught.value) or "NaN" in str(caught.value)
    for path in list_checkpoints(out):  # every checkpoint that exists is usable
        state = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["student"].values() if torch.is_floating_point(t))


def small_filesystem(path: Path, size: str) -> None:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small file system here ({done.stderr.decode().strip()})")


def test_a_full_disk_is_one_message_and_leaves_no_partial_checkpoint(clips: Path, tmp_path: Path) -> None:
    state = state_of(clips, tmp_path / "first")
    disk = tmp_path / "disk"
    small_filesystem(disk, "64k")
    try:
        with pytest.raises(InoError, match=r"cannot write the checkpoint \(\d+ MiB free on its disk"):
            save_checkpoint(disk / "run", state, 1, keep_last=1)
        assert not any((disk / "run" / "checkpoints").iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_read_only_output_folders_end_in_one_line(clips: Path, tmp_path: Path, capsys) -> None:
    from ino.cli import main

    if os.geteuid() == 0:
        folder = tmp_path / "plain-file"
        folder.write_text("")  # not a folder at all: fails for root too
    else:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o500)
    assert main(["train", "--config", "tiny", "--data", str(clips), "--output-dir", str(folder / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot create the output folder" in err and err.count("\n") == 1


def test_resume_identity_is_what_changes_results(clips: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "run"

    def run(data: str, steps: int, **changes: object) -> None:
        config = load_config(["tiny"], {"data": [data], "output_dir": str(out), "run": {"max_steps": steps}})
        for dotted, value in changes.items():
            group, key = dotted.split("__")
            setattr(getattr(config, group), key, value)
        train(config, progress=False, device="cpu")

    run(str(clips), 2)
    monkeypatch.chdir(clips.parent)
    # the same videos spelled otherwise, and settings that do not change what is computed, resume
    run(f"{clips.name}/", 3, clips__workers=1, clips__index_workers=1, run__eval_every=0, run__log_every=2)
    assert final_state(out)["step"] == 3
    extra = clips.parent / "more"
    extra.mkdir(exist_ok=True)
    for name in clips.iterdir():
        (extra / name.name).symlink_to(name)
    write_clip(extra / "added.mp4", frames=36, seed=9)
    with pytest.raises(InoError, match="was trained on other videos"):
        run(str(extra), 4)
    with pytest.raises(InoError, match=r"other settings \(optim.base_lr\)"):
        run(str(clips), 4, optim__base_lr=0.1)


def test_a_mistyped_evaluation_folder_stops_before_any_work(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    changes = {"data": [str(clips)], "output_dir": str(out), "run": {"eval_davis_root": str(tmp_path / "DAVSI")}}
    with pytest.raises(InoError, match="no such folder"):
        train(load_config(["tiny"], {**changes, "run": {**changes["run"], "eval_every": 5}}), device="cpu")
    assert not out.exists()
