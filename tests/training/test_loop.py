"""``ino train`` end to end on the tiny preset: steps, logs, checkpoints, exact resume, export, real clips, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ino.cli import main
from ino.configs.loading import PRESET_DIR, load_config
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.errors import InoError
from ino.models.weights import load_backbone
from ino.training.checkpoint import list_checkpoints, load_checkpoint
from ino.training.log import read_log
from ino.training.loop import TrainResult, train
from support.processes import hold_folder
from support.video_factory import write_clip

ROOT = Path(__file__).resolve().parents[2]


def tiny(clips: Path, out: Path, **run: object) -> object:
    config = load_config(["tiny"])
    config.data = [str(clips)]
    config.output_dir = str(out)
    config.run.deterministic = True
    for key, value in run.items():
        setattr(config.run, key, value)
    return config


def test_tiny_run_logs_checkpoints_and_exports(clips: Path, tmp_path: Path, capsys) -> None:
    config = tiny(clips, tmp_path / "run", max_steps=6, checkpoint_every=4)
    result = train(config, progress=False, device="cpu")
    assert result.step == 6
    records = read_log(tmp_path / "run")
    assert [r["step"] for r in records] == list(range(6))
    for record in records:
        assert np.isfinite(record["loss"]) and record["lr"] >= 0 and 0 <= record["data_wait"] <= 1
        expected = record["out"] + (record["mim"] + record["aff"] if record["masked"] else 0.0)
        assert record["loss"] == pytest.approx(expected, rel=1e-5)
    assert any(r["masked"] for r in records) and not all(r["masked"] for r in records)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-00000004.pt", "step-00000006.pt"]
    state = load_checkpoint(result.checkpoint)  # weights_only=True inside
    assert state["step"] == 6 and state["config"]["run"]["max_steps"] == 6
    assert set(state["loss"]) == {"center_cls.center", "center_pat.center"}
    assert (tmp_path / "run" / "config.yaml").is_file()
    out = tmp_path / "backbone.safetensors"
    assert main(["export", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "--which", "teacher"]) == 0
    exported = load_backbone(out)
    teacher = {k[len("backbone.") :]: v for k, v in state["teacher"].items() if k.startswith("backbone.")}
    for key, value in exported.state_dict().items():
        torch.testing.assert_close(value, teacher[key])


def test_resume_gives_identical_losses_and_weights(clips: Path, tmp_path: Path) -> None:
    def run(folder: str, steps: int) -> TrainResult:
        config = tiny(clips, tmp_path / folder, max_steps=steps, checkpoint_every=100)
        return train(config, progress=False, device="cpu")

    straight = run("straight", 13)  # an epoch is 10 steps: the resumed run crosses the boundary
    first = run("resumed", 4)
    second = run("resumed", 13)
    assert first.step == 4 and second.step == 13
    assert straight.losses == first.losses + second.losses
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(second.checkpoint)
    for part in ("student", "teacher", "loss"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"


def test_resume_with_other_settings_is_refused(clips: Path, tmp_path: Path) -> None:
    train(tiny(clips, tmp_path / "run", max_steps=2), progress=False, device="cpu")
    config = tiny(clips, tmp_path / "run", max_steps=4)
    config.loss.w_aff = 0.0
    with pytest.raises(InoError, match=r"loss\.w_aff"):
        train(config, progress=False, device="cpu")


def test_cli_with_dotted_overrides(clips: Path, tmp_path: Path, capsys) -> None:
    args = ["train", "--config", "tiny", "--data", str(clips), "--output-dir", str(tmp_path / "run")]
    args += ["--run.max-steps", "2", "--loss.w-mim", "0", "--run.seed", "3", "--quiet", "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    saved = load_config([tmp_path / "run" / "config.yaml"])
    assert saved.loss.w_mim == 0.0 and saved.run.seed == 3 and saved.model.arch == "vit_tiny"
    assert all("mim" not in r or r["mim"] == 0.0 for r in read_log(tmp_path / "run"))


@pytest.mark.slow
def test_real_clips_loss_falls_and_bad_files_are_skipped(videos_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    for clip in sorted(videos_dir.glob("davis16-*.mp4"))[:6]:
        (folder / clip.name).symlink_to(clip)
    (folder / "corrupt.mp4").write_bytes(b"\x00" * 4096)
    write_clip(folder / "two-frames.mp4", frames=2, seed=9)
    config = tiny(folder, tmp_path / "run", max_steps=40, checkpoint_every=1000)
    config.run.deterministic = False
    with pytest.warns(UserWarning) as caught:
        result = train(config, progress=False, device="cpu")
    messages = " ".join(str(w.message) for w in caught)
    assert "corrupt.mp4" in messages and "two-frames.mp4" in messages
    assert result.step == 40
    # masked and unmasked steps sum different terms, so each term is compared with itself
    records = read_log(tmp_path / "run")
    out = [r["out"] for r in records]
    mim = [r["mim"] for r in records if r["masked"]]
    assert np.mean(out[-10:]) < np.mean(out[:10]), out
    quarter = len(mim) // 4
    assert np.mean(mim[-quarter:]) < np.mean(mim[:quarter]) - 0.2, mim


@pytest.mark.distributed
def test_two_process_gloo_run_keeps_ranks_identical(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533"]
    command += [str(ROOT / "tests" / "support" / "distributed_worker.py"), "tiny", str(clips), str(out), "5"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    states = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key, value in states[0]["teacher"].items():
        assert torch.equal(value, states[1]["teacher"][key]), key
    for key, value in states[0]["loss"].items():
        assert torch.equal(value, states[1]["loss"][key]), key
    assert len(states[0]["clips"]) == len(states[1]["clips"]) == 5 * 2  # 5 steps x 2 clips per rank
    seen = states[0]["clips"] + states[1]["clips"]
    assert len(seen) == len(set(seen)), "a clip was loaded twice in one epoch"
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("ablation", sorted((PRESET_DIR / "ablations").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_and_ablation_parses_and_the_variants_run(ablation: Path, clips: Path, tmp_path: Path) -> None:
    for preset in ("ino-charades", "ino-kinetics"):
        parsed = load_config([preset, f"ablations/{ablation.stem}"])
        assert parsed.model.arch == "vit_small" and parsed.optim.epochs == 25
    if ablation.stem in ("paper-variant", "clip-len-2", "loss-out-aff"):
        out = tmp_path / "run"
        args = ["train", "--config", "tiny", "--config", f"ablations/{ablation.stem}", "--data", str(clips)]
        args += ["--output-dir", str(out), "--run.max-steps", "3", "--quiet", "--device", "cpu"]
        assert main(args) == 0
        records = read_log(out)
        assert len(records) == 3 and all(np.isfinite(r["loss"]) for r in records)


def test_periodic_davis_evaluation_is_logged(clips: Path, tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    write_benchmark(bench, sequences=1, config=SynthConfig(height=96, width=160, frames=5), seed=2)
    config = tiny(clips, tmp_path / "run", max_steps=2)
    config.run.eval_davis_root, config.run.eval_every, config.run.eval_short_side = str(bench), 2, 96
    train(config, progress=False, device="cpu")
    evaluations = [r for r in read_log(tmp_path / "run") if "davis_J&F-Mean" in r]
    assert len(evaluations) == 1 and evaluations[0]["step"] == 2
    assert 0 < evaluations[0]["davis_J&F-Mean"] <= 1


def test_a_second_training_run_into_the_same_folder_stops_at_once(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    other = hold_folder(out, "ino train")
    try:
        with pytest.raises(InoError, match=rf"is in use by pid {other.pid} \(ino train\)"):
            train(tiny(clips, out, max_steps=2), progress=False, device="cpu")
    finally:
        other.kill()
        other.wait()
    assert not (out / "config.yaml").exists() and not (out / "log.jsonl").exists()


def test_the_authors_schedule_replays_their_loop_and_clean_freezes_the_last_layer(clips: Path, tmp_path: Path) -> None:
    from ino.training.meta_arch import InoMetaArch
    from ino.training.schedules import lr_schedule, teacher_momentum_schedule, weight_decay_schedule

    def run(folder: str, schedule: str, **extra: object) -> tuple[object, list[dict]]:
        config = tiny(clips, tmp_path / folder, checkpoint_every=100, **extra)
        config.clips.clips_per_video, config.optim.schedule = 1, schedule  # 4 clips: 2 steps per epoch
        return config, (train(config, progress=False, device="cpu"), read_log(tmp_path / folder))[1]

    config, records = run("authors", "authors")
    epochs, per_epoch, o = config.optim.epochs, 2, config.optim
    lrs = lr_schedule(o.base_lr, o.batch_size, epochs * per_epoch, o.warmup_epochs * per_epoch, o.min_lr)
    wds, momenta = weight_decay_schedule(epochs * per_epoch), teacher_momentum_schedule(epochs * per_epoch)
    expected = []
    for epoch in range(1, epochs + 1):  # the authors' loop: from epoch 1, iteration index len * epoch + i ...
        for i in range(per_epoch):
            it = per_epoch * epoch + i
            if it >= len(lrs):  # ... which raised IndexError on entering the last epoch: here the run just ends
                break
            expected.append((lrs[it], wds[it], momenta[it]))
    assert len(records) == (epochs - 1) * per_epoch == len(expected)
    for record, (lr, wd, momentum) in zip(records, expected, strict=True):
        assert (record["lr"], record["wd"], record["momentum"]) == pytest.approx((lr, wd, momentum), rel=1e-12)

    def last_layer_changed(folder: str, schedule: str) -> bool:
        config, _ = run(folder, schedule, max_steps=per_epoch)  # the first epoch only
        initial = InoMetaArch(config, torch.device("cpu")).student.head.last_layer.state_dict()
        trained = load_checkpoint(list_checkpoints(tmp_path / folder)[-1])["student"]
        key = "head.last_layer.parametrizations.weight.original1"
        return not torch.equal(trained[key], initial["parametrizations.weight.original1"])

    assert last_layer_changed("authors-first", "authors")  # their freeze never happened (epoch >= 1 always)
    assert not last_layer_changed("clean-first", "clean")  # 0-based epochs: frozen during epoch 0
