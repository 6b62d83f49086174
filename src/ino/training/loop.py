"""INO self-supervised training (docs/method.md §1-§6): one process on a CPU or GPU, or many under ``torchrun``.

The loop only builds the data, the schedules and the :class:`~ino.training.meta_arch.InoMetaArch`, then calls its
``train_step`` and keeps the books: logs, checkpoints, periodic DAVIS J&F, resumption.

Fixed relative to the authors' code (docs/method.md §10): 0-based epochs over exactly ``epochs`` (no skipped
warm-up epoch, the last-layer freeze happens), no crash when not distributed, a bad video takes another clip,
resume restores everything (models, optimiser, scaler, centres, RNG, position inside the epoch): 2N straight steps
and N + N resumed steps give identical weights in deterministic mode.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed
import yaml

from ino.configs.schema import TrainConfig
from ino.data.augment import MultiCropAugment
from ino.data.clips import ClipDataset, ClipIndex, ClipSampler, list_videos, make_loader
from ino.data.davis import DavisLayout
from ino.errors import InoError, Interrupted
from ino.training.checkpoint import latest_intact_checkpoint, save_checkpoint
from ino.training.log import TrainLog
from ino.training.meta_arch import InoMetaArch, StepSchedule
from ino.training.schedules import lr_schedule, teacher_momentum_schedule, weight_decay_schedule
from ino.utils import distributed
from ino.utils.atomic import atomic_write_text
from ino.utils.outputs import exclusive
from ino.utils.stopping import EXIT_CODES, StopRequests

log = logging.getLogger(__name__)
#: How long the other ranks wait for rank 0 to build the clip index (see :func:`_clip_index`).
INDEX_WAIT = datetime.timedelta(hours=2)
#: settings that may change between a run and its resumption: they do not change what is computed. The videos are
#: compared by content (:meth:`ino.data.clips.ClipIndex.identity`), not by how ``--data`` names them.
RESUMABLE_CHANGES = {
    ("clips", "workers"),
    ("clips", "index_workers"),
    ("clips", "cache_dir"),
    *(("run", key) for key in ("max_steps", "log_every", "checkpoint_every", "keep_last", "deterministic")),
    *(("run", key) for key in ("eval_davis_root", "eval_every", "eval_sequences", "eval_short_side")),
}


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    losses: list[float]
    #: the run stopped at its ``deadline`` before ``run.max_steps`` (the schedules were planned for more steps)
    stopped_at_deadline: bool = False


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    current = config.to_dict()
    changed = [
        f"{group}.{key}"
        for group, values in saved.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if (group, key) not in RESUMABLE_CHANGES and current.get(group, {}).get(key) != value
    ]
    if changed:
        raise InoError(
            f"{path} was written with other settings ({', '.join(changed)}); use another --output-dir to start a "
            "new run, or the original settings to resume"
        )


def train(
    config: TrainConfig, progress: bool = True, device: str | None = None, deadline: float | None = None
) -> TrainResult:
    """Run (or resume) training as configured; returns where it stopped.

    ``deadline`` (a ``time.monotonic()`` value) ends the run after the step during which it passes, with a
    checkpoint, whatever the machine's load: ``ino demo`` keeps its time budget so.
    """
    config.validate()
    if not config.data:
        raise InoError("no training data: pass --data with a folder, glob or CSV list of videos")
    videos = list_videos(config.data)  # every input is checked before any work
    if config.run.eval_davis_root:
        names = DavisLayout(Path(config.run.eval_davis_root)).sequences()
        unknown = sorted(set((config.run.eval_sequences or "").split(",")) - set(names) - {""})
        if unknown:
            raise InoError(f"run.eval_sequences: {', '.join(unknown)} not in {config.run.eval_davis_root}")
    dist = distributed.setup(device)
    try:
        # rank 0 writes the run folder (checkpoints, logs, the clip index): one training run per folder
        with exclusive(config.output_dir, "ino train") if dist.is_main else contextlib.nullcontext():
            return _train(config, videos, dist, progress, deadline)
    finally:
        distributed.cleanup()


def _clip_index(config: TrainConfig, videos: list[Path], run_dir: Path, dist: distributed.Distributed) -> ClipIndex:
    """The clip index, probed by rank 0 into the cache while the other ranks wait, then read from it.

    The ranks wait on a gloo group of their own, with a long timeout: probing Kinetics takes minutes, and NCCL's
    watchdog ends a collective after 10. Rank 0 then sends its index's identity, or why it failed, so that the
    other ranks stop with its reason instead of waiting or probing in turn, and a rank that sees other files
    (another node's copy of the data) stops at once instead of training on another index.
    """
    clips = config.clips

    def build() -> ClipIndex:
        return ClipIndex.build(
            videos,
            clip_len=clips.clip_len,
            sampling=clips.sampling,
            target_fps=clips.target_fps,
            frame_stride=clips.frame_stride,
            cache_dir=clips.cache_dir or str(run_dir / "clip-index"),
            workers=clips.index_workers,
            backend=clips.backend,
        )

    if not dist.enabled:
        return build()
    group = torch.distributed.new_group(backend="gloo", timeout=INDEX_WAIT)
    try:
        if dist.is_main:
            try:
                index = build()
            except Exception as error:
                reason = str(error) if isinstance(error, InoError) else f"{type(error).__name__}: {error}"
                torch.distributed.broadcast_object_list([("failed", reason)], src=0, group=group)
                raise
            torch.distributed.broadcast_object_list([("built", index.identity())], src=0, group=group)
            return index
        sent: list[tuple[str, str] | None] = [None]
        torch.distributed.broadcast_object_list(sent, src=0, group=group)
        assert sent[0] is not None
        outcome, detail = sent[0]
        if outcome == "failed":
            raise InoError(f"rank {dist.rank}: rank 0 could not build the clip index: {detail}")
        index = build()
        if index.identity() != detail:
            raise InoError(
                f"rank {dist.rank}: its clip index differs from rank 0's (other files, sizes or frame counts under "
                f"{', '.join(map(str, config.data))} on this node); every rank must see the same videos"
            )
        return index
    finally:
        torch.distributed.destroy_process_group(group)


def _train(
    config: TrainConfig, videos: list[Path], dist: distributed.Distributed, progress: bool, deadline: float | None
) -> TrainResult:
    run_dir = Path(config.output_dir)
    resume_path, resumed = latest_intact_checkpoint(run_dir) or (None, None)
    if resumed is not None:
        _check_resumable(resumed["config"], config, resume_path)
    if config.run.deterministic:
        torch.use_deterministic_algorithms(True)
    device = dist.device

    index = _clip_index(config, videos, run_dir, dist)
    if resumed is not None and resumed.get("data_identity", index.identity()) != index.identity():
        raise InoError(
            f"{resume_path} was trained on other videos ({resumed.get('videos')} usable then, {len(index.videos)} "
            "now, or the same number changed); use another --output-dir for a new run, or the original videos"
        )
    batch = config.optim.batch_size
    sampler = ClipSampler(
        index, config.clips.clips_per_video, seed=config.run.seed, rank=dist.rank, world_size=dist.world_size,
        batch_size=batch,
    )  # fmt: skip
    steps_per_epoch = sampler.steps_per_epoch
    if steps_per_epoch < 1:
        raise InoError(
            f"{len(index.videos)} usable videos give fewer clips per epoch than one step needs "
            f"({batch} clips x {dist.world_size} processes); add videos or lower optim.batch_size"
        )
    o = config.optim
    total_steps = o.epochs * steps_per_epoch  # the schedules' length
    # the authors' loop entered its schedules one epoch in and trained epochs - 1 of them (docs/method.md §6.3)
    offset = steps_per_epoch if o.schedule == "authors" else 0
    run_steps = total_steps - offset
    stop_step = min(run_steps, config.run.max_steps or run_steps)
    dataset = ClipDataset(index, MultiCropAugment(config.augment), seed=config.run.seed)

    meta = InoMetaArch(config, device, rank=dist.rank, distributed=dist.enabled)
    total_clips = batch * dist.world_size
    warmup = o.warmup_epochs * steps_per_epoch
    lrs = lr_schedule(o.base_lr, total_clips, total_steps, warmup, o.min_lr, config.clips.clip_len)
    wds = weight_decay_schedule(total_steps, o.weight_decay, o.weight_decay_end)
    momenta = teacher_momentum_schedule(total_steps, o.momentum_teacher, 1.0)

    step = 0
    if resumed is not None:
        meta.load_state_dict(resumed)
        torch.set_rng_state(resumed["rng"]["torch"])
        if device.type == "cuda" and "cuda" in resumed["rng"]:
            torch.cuda.set_rng_state(resumed["rng"]["cuda"], device)
        step = int(resumed["step"])
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    train_log = TrainLog(run_dir, dist.is_main, stop_step, step, config.run.log_every, progress)
    losses: list[float] = []
    saved: Path | None = resume_path

    def checkpoint() -> Path | None:
        train_log.flush()  # the log holds exactly the steps up to the checkpoint: a resume continues it from there
        if not dist.is_main:
            return None
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        state = {
            **meta.state_dict(),
            "step": step,
            "epoch": step // steps_per_epoch,
            "rng": rng,
            "config": config.to_dict(),
            "data_identity": index.identity(),
            "videos": len(index.videos),
        }
        try:
            path = save_checkpoint(run_dir, state, step, config.run.keep_last)
        except InoError as error:
            raise InoError(f"{error}; the last good checkpoint is {saved or 'none: no checkpoint yet'}") from None
        log.info("saved %s", path)
        return path

    loader = make_loader(dataset, sampler, batch, config.clips.workers, pin_memory=device.type == "cuda")
    stopped_at_deadline = False
    try:
        with StopRequests() as stop:
            while step < stop_step and not stopped_at_deadline:
                epoch, in_epoch = divmod(step, steps_per_epoch)
                sampler.set_epoch(epoch)
                sampler.skip(in_epoch * batch)
                waited, started = 0.0, time.perf_counter()
                before = step
                for global_crops, local_crops in loader:
                    waited += time.perf_counter() - started
                    at = step + offset
                    frozen = at // steps_per_epoch < o.freeze_last_layer
                    schedule = StepSchedule(float(lrs[at]), float(wds[at]), float(momenta[at]), frozen)
                    try:
                        record = meta.train_step(global_crops, local_crops, step, schedule)
                    except InoError as error:
                        hint = f" (to go on with other settings: --model.init {saved} --output-dir NEW)"
                        last = f"{saved}{hint}" if saved else "none yet"
                        raise InoError(f"{error}; the last good checkpoint is {last}") from None
                    elapsed = time.perf_counter() - started
                    record = {"step": step, "epoch": epoch, **record, "clips_per_s": total_clips / max(elapsed, 1e-9)}
                    record["data_wait"] = waited / max(elapsed, 1e-9)
                    losses.append(record["loss"])
                    step += 1
                    train_log.step(record)
                    signalled = stop.requested()
                    late = deadline is not None and distributed.any_over_ranks(time.monotonic() >= deadline)
                    if late or signalled or step % config.run.checkpoint_every == 0 or step == stop_step:
                        saved = checkpoint() or saved
                    if signalled:
                        raise Interrupted(
                            f"stopped by {signalled.name} after step {step}; saved {saved} (the same command resumes)",
                            EXIT_CODES[signalled],
                        )
                    if late and step < stop_step:
                        log.info("stopped at the deadline after %d of %d steps", step, stop_step)
                        stopped_at_deadline = True
                        break
                    if config.run.eval_every and step % config.run.eval_every == 0:
                        _evaluate(config, meta, run_dir, step, train_log, dist)
                    if step >= stop_step or step % steps_per_epoch == 0:
                        break
                    waited, started = 0.0, time.perf_counter()
                if stopped_at_deadline:
                    break
                if step == before:
                    raise InoError(f"epoch {epoch}: the clip loader gave no batch at position {in_epoch} of the epoch")
                if step % steps_per_epoch == 0 and step % config.run.checkpoint_every and step != stop_step:
                    saved = checkpoint() or saved  # epoch end
    finally:
        train_log.close()
    distributed.barrier()
    return TrainResult(run_dir, step, saved, losses, stopped_at_deadline)


def _evaluate(
    config: TrainConfig, meta: InoMetaArch, run_dir: Path, step: int, train_log: TrainLog, dist: distributed.Distributed
) -> None:
    """Periodic J&F of the student backbone on ``run.eval_davis_root`` (main rank; the others wait)."""
    if dist.is_main and config.run.eval_davis_root:
        from ino.training.davis_eval import davis_jf

        run = config.run
        sequences = run.eval_sequences.split(",") if run.eval_sequences else None
        scores = davis_jf(
            meta.student.backbone, run.eval_davis_root, run_dir / "eval", meta.device, run.eval_short_side, sequences
        )
        train_log.record({"step": step, **scores})
        log.info("step %d: DAVIS J&F-Mean %.4f", step, scores["davis_J&F-Mean"])
    distributed.barrier()
