"""The phases of the GPU proof: which measurements run, in what order, under which deadlines.

Each phase fills its part of ``run.record`` through ``run.guarded`` (skip when the time is not there, record a
failure and go on) and never raises. Time estimates here only decide what to skip; the numbers recorded are
always measured.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import parts, video

if TYPE_CHECKING:
    from .record import Run


def _scale(run: Run) -> float:
    """Fixed allowances (start-up, a model build) are ~4x smaller for the smoke sizes."""
    return 0.25 if run.args.smoke else 1.0


def _eager_points(record: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["batch"]: r for r in record.get("throughput", []) if not r.get("compile") and "clips_per_s" in r}


def phase_a(run: Run, deadline: float) -> None:
    """FLOPs per clip, eager throughput per batch size, a profile of one step, the loader by worker count."""
    s, device, scale = run.sizes, run.device, _scale(run)
    record = run.record["parts"]["a"]
    record["protocol"] = {
        **s.protocol(),
        "steps": f"{s.warmup_steps} warm-up steps, then >= {s.timed_s:g} s and >= {s.min_timed_steps} timed steps; "
        "odd steps masked (INO masks half of its steps), each step the whole InoMetaArch.train_step",
        "inputs": "random normal crops already on the device: decoding, augmentation and the host-to-device copy "
        "are not in these numbers (the loader is measured on its own below)",
    }
    record["peak"] = parts.peak_tflops(device, run.args.peak_tflops)
    workers = sorted({min(w, parts.os_cpu_count()) for w in s.loader_workers})
    loader_need = len(workers) * (s.loader_s + 4 * scale)
    profile_need = 15 * scale
    eager_deadline = deadline - loader_need - profile_need
    record["flops"] = run.guarded("FLOPs per clip", 10 * scale, eager_deadline, lambda: parts.count_flops(s, device))
    flops, peak = record["flops"].get("per_clip"), record["peak"]["tflops"]
    record["throughput"] = []
    previous: dict[str, Any] | None = None
    for batch in s.batches:
        need = 1.2 * s.timed_s + 5 * scale
        if previous and "step_ms" in previous:  # the last point's warm-up and steps, grown with the batch
            need = 1.2 * s.timed_s + (previous["warmup_s"] + 2 * previous["step_ms"] / 1000) * batch / previous["batch"]
        result = run.guarded(
            f"eager throughput, batch {batch}",
            need,
            eager_deadline,
            lambda b=batch: parts.train_throughput(s, device, b, False, eager_deadline, flops, peak),
        )
        record["throughput"].append(result if "batch" in result else {"batch": batch, "compile": False, **result})
        previous = result
        run.save()
    points = _eager_points(record)
    batch = s.profile_batch if s.profile_batch in points else max(points, default=s.profile_batch)
    need = profile_need
    if batch in points:
        need = points[batch]["step_ms"] / 1000 * (s.warmup_steps + 4 * s.profile_steps) + 3 * scale
    record["profile"] = run.guarded(
        f"profile, batch {batch}", need, deadline - loader_need, lambda: parts.profile_step(s, device, batch)
    )
    run.save()
    record["loader"] = {"videos": str(run.inputs.videos), "note": run.inputs.videos_note, "rows": []}
    for count in workers:
        result = run.guarded(
            f"loader, {count} workers",
            s.loader_s + 2 * scale,
            deadline,
            lambda w=count: parts.loader_throughput(s, run.inputs.videos, w, deadline, run.work / "clip-index"),
        )
        record["loader"]["rows"].append(result if "workers" in result else {"workers": count, **result})
        run.save()


def phase_a_compiled(run: Run, deadline: float) -> None:
    """The compiled points, last of the run: a compile cannot be cut short, so its time must be left over."""
    s, device, scale = run.sizes, run.device, _scale(run)
    record = run.record["parts"]["a"]
    record.setdefault("throughput", [])
    flops = record.get("flops", {}).get("per_clip")
    peak = record.get("peak", {}).get("tflops")
    compiled = False
    failed: str | None = None
    for batch in s.batches:
        if failed:
            result: dict[str, Any] = {"skipped": f"torch.compile failed at batch {failed}"}
        else:
            need = 1.2 * s.timed_s + 10 * scale if compiled else s.compile_need_s
            result = run.guarded(
                f"compiled throughput, batch {batch}",
                need,
                deadline,
                lambda b=batch: parts.train_throughput(s, device, b, True, deadline, flops, peak),
            )
            compiled = compiled or "clips_per_s" in result
            failed = str(batch) if "error" in result else None
        record["throughput"].append({"batch": batch, "compile": True, **result})
        run.save()


def phase_b(run: Run, deadline: float) -> None:
    """Propagation speed at 480p, features included, in float32 then bfloat16, each with half the time left."""
    s, device, scale = run.sizes, run.device, _scale(run)
    record = run.record["parts"]["b"]
    record["runs"] = []
    dtypes = ("float32", "bfloat16")
    for i, dtype in enumerate(dtypes):
        own = time.monotonic() + (deadline - time.monotonic()) / (len(dtypes) - i)
        result = run.guarded(
            f"propagation, {dtype} features",
            8 * scale,
            own,
            lambda d=dtype, t=own: video.propagation_speed(s, device, run.inputs.davis, d, t),
        )
        record["runs"].append(result if "feature_dtype" in result else {"feature_dtype": dtype, **result})
        run.save()


def _planning_rate(run: Run) -> tuple[float, str, int]:
    """Clips/s to plan the training run's steps with (the slower of the model step and the loader, as measured in
    part a), and the loader worker count to use; measured here with a short probe when part a did not run."""
    s = run.sizes
    a = run.record["parts"].get("a", {})
    points = _eager_points(a)
    rows = [r for r in a.get("loader", {}).get("rows", []) if "clips_per_s" in r]
    workers = max(rows, key=lambda r: r["clips_per_s"])["workers"] if rows else min(8, parts.os_cpu_count())
    if s.train_batch in points:
        model, source = points[s.train_batch]["clips_per_s"], f"part a, eager batch {s.train_batch}"
    else:
        probe = parts.train_throughput(s, run.device, s.train_batch, False, time.monotonic(), None, None)
        model, source = probe["clips_per_s"], f"a probe of {probe['timed_steps']} steps at batch {s.train_batch}"
    if rows:
        loader = max(r["clips_per_s"] for r in rows)
        if loader < model:
            return loader, f"the loader ({workers} workers, part a)", workers
    return model, source, workers


def _export(checkpoint: Path, which: str, path: Path) -> Any:
    """``ino export`` of one network of the checkpoint, read back from the file (what a user would propagate)."""
    from ino.models.weights import load_backbone, save_backbone

    save_backbone(load_backbone(checkpoint, which=which), path, source=f"{checkpoint}[{which}]")
    return load_backbone(path)


def phase_c(run: Run, deadline: float) -> None:
    """Random init scored first (it also times a propagation pass), then training for what is left of
    ``train_s`` after reserving the trained propagations, then the trained student (and teacher, time allowing)."""
    s, device, scale, work = run.sizes, run.device, _scale(run), run.work
    record = run.record["parts"]["c"]
    davis = run.inputs.davis
    names = video.davis_sequences(s, davis)
    config = video.propagation_config(s, "float32")
    record["protocol"] = {
        "davis": str(davis),
        "sequences": names,
        "frames": "all frames" if s.davis_max_frames is None else f"the first {s.davis_max_frames} frames",
        "propagation": f"ino-davis preset: short side {config.short_side}, block {config.feature_block + 1} + final "
        f"norm, top-k {config.topk}, first + {config.n_last_frames} previous frames, radius {config.radius}, "
        f"temperature {config.temperature}, float32 features",
        "random_init": "the student backbone exactly as training initialised it (seed 0)",
        "scorer": "ino.evaluation.scorer.evaluate (davis2017-evaluation definitions)",
    }

    def score_random() -> dict[str, Any]:
        model = video.random_init_backbone(s.train_config())
        return video.score_backbone(s, device, model, davis, work / "pred-random", names)

    record["random"] = run.guarded("score the random init", 10 * scale, deadline, score_random)
    run.save()
    score_s = record["random"].get("wall_s", 30 * scale)
    try:
        rate, source, workers = _planning_rate(run)
    except Exception as error:
        record["training"] = {"error": parts.describe_error(error)}
        return
    train_s = min(s.train_s, deadline - time.monotonic() - 2.2 * score_s - 10 * scale)
    record["planning"] = {"clips_per_s": rate, "from": source, "loader_workers": workers, "train_s": train_s}
    if train_s < s.train_s:
        record["planning"]["note"] = f"training cut from {s.train_s:g} s to {train_s:.0f} s by the overall budget"

    def train() -> dict[str, Any]:
        return video.train_run(s, device, run.inputs.videos, work, train_s, rate, workers)

    record["training"] = run.guarded("training", min(s.train_s, 30 * scale), deadline, train)
    run.save()
    checkpoint = record["training"].get("checkpoint")
    if not checkpoint:
        return
    for which, key in (("student", "trained"), ("teacher", "trained_teacher")):

        def score(which: str = which) -> dict[str, Any]:
            model = _export(Path(checkpoint), which, work / f"trained-{which}.safetensors")
            result = video.score_backbone(s, device, model, davis, work / f"pred-{which}", names)
            return {"exported": str(work / f"trained-{which}.safetensors"), "which": which, **result}

        record[key] = run.guarded(f"score the trained {which}", 1.2 * score_s + 2 * scale, deadline, score)
        run.save()


PHASES = {"a": phase_a, "b": phase_b, "c": phase_c, "a-compiled": phase_a_compiled}
