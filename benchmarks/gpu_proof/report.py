"""``results.md`` from the record of ``benchmarks/gpu_proof.py``: every number next to the protocol that produced
it, skipped and failed measurements said as such, and nothing that was not measured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SMOKE_LINE = (
    "**SMOKE NUMBERS, NOT RESULTS:** tiny sizes on the CPU (a tiny ViT, small crops, a few steps and frames), "
    "run only to check that every part of `benchmarks/gpu_proof.py` works."
)


def one_line(result: dict[str, Any]) -> str:
    """A measurement in a few words, for the console."""
    if "skipped" in result:
        return f"skipped ({result['skipped']})"
    if "error" in result:
        return f"FAILED ({result['error']['type']}: {result['error']['message'][:200]})"
    shown = [f"{k} {fmt(result[k])}" for k in ("clips_per_s", "per_clip", "frames_per_s", "mfu") if k in result]
    if "global" in result:
        shown.append(f"J&F-Mean {fmt(result['global']['J&F-Mean'])}")
    if "steps" in result and "planned_steps" in result:
        shown.append(f"{result['steps']} steps")
    return ", ".join([*shown, f"{result.get('wall_s', 0):.1f} s"])


def errors(record: dict[str, Any]) -> list[str]:
    """Where a measurement failed: dotted paths of every ``error`` entry under ``parts``."""

    def walk(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            if "error" in node:
                yield path
            for key, value in node.items():
                if key != "error":
                    yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}[{i}]")

    return list(walk(record.get("parts", {}), "parts"))


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1e6:
            return f"{value:.4g}"
        return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def status(result: dict[str, Any]) -> str | None:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    if "error" in result:
        return f"**failed**: {result['error']['type']}: {result['error']['message'][:300]}"
    return None


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def markdown(record: dict[str, Any]) -> str:
    env, inputs = record["environment"], record["inputs"]
    lines = [SMOKE_LINE, ""] if record["smoke"] else []
    device = env.get("gpu") or f"the CPU ({env['torch_threads']} torch thread(s))"
    lines += [
        "# GPU proof: training throughput, propagation speed, a short INO run",
        "",
        f"Produced by `{record['command']}` on {device}, {env['cpu_count']} CPU cores; torch {env['torch']} "
        f"(CUDA {env['cuda']}), timm {env['timm']}, OpenCV {env['opencv']}, PyAV {env['pyav'] or 'absent'}; "
        f"commit {env['git_commit'] or 'unknown'}{' (uncommitted changes)' if env.get('git_dirty') else ''}; "
        f"started {record['started']}, budget {record['budget_s']:g} s; wall time per phase: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in record["wall_s"].items())
        + ". Every number below was measured by that run (`results.json` holds all of them, with the raw rows).",
        "",
        f"Data: training videos: {inputs['n_videos']} videos, {inputs['videos_note']}"
        + ("; **synthetic stand-ins** (no data folder)" if inputs["synthetic"] else "")
        + f"; labelled: `{inputs['davis']}` ({len(inputs['davis_sequences'])} sequences).",
    ]
    parts = record["parts"]
    if "a" in parts:
        lines += part_a(parts["a"])
    if "b" in parts:
        lines += part_b(parts["b"])
    if "c" in parts:
        lines += part_c(parts["c"])
    failed = errors(record)
    lines += ["", "## Failures", "", ", ".join(f"`{f}`" for f in failed) if failed else "None."]
    return "\n".join(lines) + "\n"


def part_a(a: dict[str, Any]) -> list[str]:
    lines = ["", "## (a) Training throughput", ""]
    if "protocol" not in a:
        return [*lines, status(a) or "Not run."]
    p = a["protocol"]
    lines.append(
        f"Protocol: {p['model']}, clips of {p['clip_length']} frames, {p['crops']}, {p['precision']} autocast, "
        f"`{p['preset']}` settings; {p['steps']}; {p['inputs']}."
    )
    flops, peak = a.get("flops", {}), a.get("peak", {})
    if "per_clip" in flops:
        lines.append(
            f"Model FLOPs per clip: {flops['per_clip'] / 1e9:.1f} GFLOP (FlopCounterMode over a whole step: teacher "
            f"forward, student forward, backward; mean of steps {flops['steps_counted'][0]}-"
            f"{flops['steps_counted'][-1]} at batch 1, masked {flops['per_clip_masked'] / 1e9:.1f}, unmasked "
            f"{flops['per_clip_unmasked'] / 1e9:.1f}; {flops['note']})."
        )
    else:
        lines.append(f"FLOPs per clip: {status(flops) or 'not counted'}.")
    lines.append(
        f"MFU peak: {peak['tflops']:g} TFLOP/s ({peak['source']})."
        if peak.get("tflops")
        else f"MFU: not computed ({peak.get('reason', 'no peak')})."
    )
    rows = []
    for r in a.get("throughput", []):
        compiled = "yes" if r.get("compile") else "no"
        if status(r):
            rows.append([str(r.get("batch")), compiled, status(r) or "", "", "", "", "", ""])
            continue
        mem = "n/a (CPU)" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f} %"
        note = f"warm-up {r['warmup_s']:.1f} s ({r['warmup_steps']} steps{', compile' if r['compile'] else ''})"
        if r.get("dynamo"):
            note += f"; {r['dynamo']['unique_graphs']} graphs, {r['dynamo']['graph_breaks']} graph breaks"
        if r.get("note"):
            note += f"; {r['note']}"
        rows.append(
            [
                str(r["batch"]),
                compiled,
                fmt(r["clips_per_s"]),
                f"{r['step_ms']:.1f}",
                fmt(r["model_tflops_per_s"]),
                mfu,
                mem,
                note,
            ]
        )
    lines += [
        "",
        *table(
            ["clips/step", "torch.compile", "clips/s", "ms/step", "model TFLOP/s", "MFU", "peak GiB", "notes"], rows
        ),
    ]
    lines += profile_lines(a.get("profile", {}))
    loader = a.get("loader", {})
    if loader:
        batch = next((r["batch"] for r in loader["rows"] if "batch" in r), "?")
        lines += [
            "",
            f"Data loader (`ino.data.clips` loader: decode the clip's frames, then the global and local crops of "
            f"each, as in training; batches of {batch} clips, the first batch (worker start-up) not timed) on "
            f"{loader['note']}:",
            "",
        ]
        rows = [
            [
                str(r.get("workers")),
                status(r) or fmt(r["clips_per_s"]),
                "" if status(r) else str(r["clips"]),
                "" if status(r) else r["reader"],
            ]
            for r in loader["rows"]
        ]
        lines += table(["workers", "clips/s", "clips timed", "reader"], rows)
    return lines


def profile_lines(profile: dict[str, Any]) -> list[str]:
    if not profile:
        return []
    if status(profile):
        return ["", f"Profile: {status(profile)}."]
    lines = [
        "",
        f"Where a step's time goes (eager, batch {profile['batch']}, {profile['steps']} steps under "
        f"torch.profiler, top operators by {profile['sorted_by']}, of {profile['total_ms_per_step']:.1f} ms per step "
        "summed over all operators):",
        "",
    ]
    rows = [
        [f"`{r['op'][:60]}`", f"{r['ms_per_step']:.2f}", f"{100 * r['share']:.1f} %", f"{r['calls_per_step']:g}"]
        for r in profile["top_ops"]
    ]
    lines += table(["operator", "ms/step", "share", "calls/step"], rows)
    stages = profile["stage_ms_per_step"]
    lines += ["", f"Stages ({profile['stage_note']}): " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items()) + "."]
    return lines


def part_b(b: dict[str, Any]) -> list[str]:
    runs = b.get("runs", [])
    done = [r for r in runs if "protocol" in r]
    height = done[0]["protocol"]["frame_size"].rsplit("x", 1)[-1] if done else "480"
    lines = ["", f"## (b) Propagation at {height}p, features included", ""]
    if done:
        p = done[0]["protocol"]
        lines.append(
            f"Protocol: `ino.VideoPropagator.run` on {p['frames']}, {p['frame_size']} (grid {p['grid']}), "
            f"{p['backbone']}, block {p['block']} + final norm, top-k {p['topk']}, context {p['context']}, radius "
            f"{p['radius']}, {p['batch_size']} frames per backbone pass; JPEG decode (background thread), features, "
            "propagation and full-size masks timed, PNG writing not; after a warm-up stream. Target: 2,000 frames "
            "in <= 30 s."
        )
    rows = []
    for r in runs:
        if status(r):
            rows.append([r.get("feature_dtype", "?"), status(r) or "", "", "", "", "", ""])
            continue
        mem = "n/a (CPU)" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
        rows.append(
            [
                r["feature_dtype"],
                str(r["frames"]),
                fmt(r["frames_per_s"]),
                f"{r['ms_per_frame']:.1f}",
                f"{r['projected_2000_frames_s']:.1f}",
                fmt(r["meets_30s_target"]),
                mem,
            ]
        )
    return [
        *lines,
        "",
        *table(["features", "frames timed", "frames/s", "ms/frame", "2,000 frames (s)", "<= 30 s", "peak GiB"], rows),
    ]


def part_c(c: dict[str, Any]) -> list[str]:
    lines = ["", "## (c) INO from scratch, fixed wall-clock budget, scored on DAVIS-layout data", ""]
    p = c.get("protocol")
    if not p:
        return [*lines, "Not run."]
    t = c.get("training", {})
    if "recipe" in t:
        r = t["recipe"]
        lines.append(
            f"Training: `ino.training.loop.train` from scratch, {r['model']}, {r['crops']}, {r['precision']}, "
            f"`{r['preset']}` settings with batch {r['batch_size']} clips, base lr {r['base_lr']:g}, {r['epochs']} "
            f"epochs of {r['steps_per_epoch']} steps ({r['clips_per_video_per_epoch']} clips per video at most; "
            f"{r['warmup_epochs']} warm-up, "
            f"{r['schedule']} schedule), loss weights {r['loss_weights']}, {r['loader_workers']} loader workers, "
            f"seed {r['seed']}, on {r['videos']}. It ran {t['steps']} steps ({t['clips_seen']} clips) in "
            f"{t['wall_s']:.0f} s of a {t['budget_s']:.0f} s budget ({t['steps_s']:.0f} s in steps, data waits "
            f"included; {t['outside_steps_s']:.0f} s outside them: {t['outside_steps_note']}; "
            f"{t['planned_steps']} planned from {fmt(t['planned_from_clips_per_s'])} clips/s"
            f"{', stopped at the deadline' if t['stopped_at_deadline'] else ''}); loss {fmt(t['first_loss'])} -> "
            f"{fmt(t['last_loss'])}, mean data wait {fmt(t['mean_data_wait'])} of a step."
        )
        if c.get("planning", {}).get("note"):
            lines.append(c["planning"]["note"] + ".")
    else:
        lines.append(f"Training: {status(t) or 'not run'}.")
    lines += [
        "",
        f"Scoring: {p['propagation']}; {len(p['sequences'])} sequences of `{p['davis']}`, {p['frames']} of "
        f"each; random init = {p['random_init']}; {p['scorer']}. One run, one seed: the run-to-run "
        "spread was not measured.",
        "",
    ]
    backbones = [
        ("random init", c.get("random", {})),
        ("trained, student", c.get("trained", {})),
        ("trained, teacher", c.get("trained_teacher", {})),
    ]
    rows = []
    for name, result in backbones:
        if status(result) or "global" not in result:
            rows.append([name, status(result) or "not run", "", ""])
            continue
        g = result["global"]
        rows.append([name, f"{g['J&F-Mean']:.4f}", f"{g['J-Mean']:.4f}", f"{g['F-Mean']:.4f}"])
    lines += table(["backbone", "J&F-Mean", "J-Mean", "F-Mean"], rows)
    scored = [(name, result) for name, result in backbones if "per_object" in result]
    if scored:
        objects = list(scored[0][1]["per_object"])
        header = ["sequence_object", *(f"{name} J&F / J / F" for name, _ in scored)]
        rows = [
            [
                o,
                *(
                    " / ".join(f"{res['per_object'][o][k]:.3f}" for k in ("J&F-Mean", "J-Mean", "F-Mean"))
                    for _, res in scored
                ),
            ]
            for o in objects
        ]
        lines += ["", *table(header, rows)]
    return lines
