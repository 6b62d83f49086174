"""``run_suite``: every task given, for every model given, into ``<out>/<model>/<task>/``, then one table.

Order of work: rank 0 takes ``<out>`` as its one writer; every task and model is checked (task available, preset,
quick-check support, weights loadable, the record of each task folder agrees with the settings) before any
propagation; then model after model, task after task: the task's run (resumable sequence by sequence, each rank
its share under ``torchrun``), and on rank 0 its scoring, its record and the table, rewritten after every task so
that an interrupted suite leaves a table of what is done. A rerun of the same command skips scored tasks and
resumes the others; other settings are refused (:mod:`ino.suite.record`).

Signals: as ``ino propagate``. Ctrl-C stops at once (exit 130) and SIGTERM ends the process; either way finished
sequences and scored tasks are kept (every file is written temp-then-rename, a sequence's folder appears only
complete) and the same command resumes. Under ``torchrun`` a rank that fails stops the others.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ino import __version__
from ino.errors import InoError
from ino.suite.cards import protocol_card
from ino.suite.record import SCORED, STARTED, check_record, read_record, write_record
from ino.suite.tasks import Task, get_task

if TYPE_CHECKING:
    from ino.models.timm_backbone import Backbone
    from ino.propagation.presets import PropagationConfig
    from ino.utils.distributed import Distributed

log = logging.getLogger(__name__)
#: a model's name is a folder name: letters, digits, and . _ + - (not first)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
#: the table's files in <out>, which no model folder may be named
TABLE_FILES = ("suite.json", "suite.md", "suite.html")
#: the fewest frames a DAVIS quick check can score (the protocol drops the first and the last)
DAVIS_MIN_FRAMES = 3


@dataclass(frozen=True)
class ModelSpec:
    """One column of the comparison: a weights file (or ``"random"``) and how to read it."""

    checkpoint: str
    name: str
    arch: str | None = None
    which: str | None = None
    patch_size: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class TaskSpec:
    """One task to run: its registry name, dataset root, preset (None: the task's default) and own options."""

    name: str
    root: str | Path
    preset: str | None = None
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass
class _Cell:
    """One model on one task: what it runs with and where it writes."""

    model: ModelSpec
    task: Task
    spec: TaskSpec
    preset: str
    config: PropagationConfig
    folder: Path
    run_settings: dict[str, object]
    settings: dict[str, object]
    card: dict[str, str]
    backbone: dict[str, object]


def _check_inputs(models: Sequence[ModelSpec], tasks: Sequence[TaskSpec], max_frames: int | None) -> None:
    if not models:
        raise InoError("give at least one --checkpoint")
    if not tasks:
        raise InoError("give at least one task root (--davis-root, --jhmdb-root, --vip-root, --ytvos-root)")
    names = [m.name for m in models]
    for name in names:
        if not MODEL_NAME.fullmatch(name) or name in TABLE_FILES:
            raise InoError(
                f"--name {name!r}: a model's name is its folder name beside {', '.join(TABLE_FILES)}; use letters, "
                "digits, . _ + -"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InoError(f"two models are named {duplicates[0]!r}: give each --checkpoint its own --name")
    seen = [t.name for t in tasks]
    if len(set(seen)) != len(seen):
        raise InoError("a task is given twice")
    for spec in tasks:
        task = get_task(spec.name)
        task.check_available(spec.preset or task.default_preset)
        if not Path(spec.root).is_dir():
            raise InoError(f"--{task.name}-root {spec.root}: no such folder")
        if max_frames is not None and not task.max_frames:
            raise InoError(
                f"--max-frames: the {task.title} task has no quick-check mode (its run or scorer takes every frame); "
                f"leave --{task.name}-root out of a quick check"
            )
    if max_frames is not None and max_frames < DAVIS_MIN_FRAMES and "davis" in seen:
        raise InoError(f"--max-frames {max_frames}: DAVIS scores all but the first and last frames; give at least 3")


class _Backbones:
    """The backbones of one model, loaded once per checkpoint entry (student / teacher) its tasks ask for."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec, self.loaded = spec, {}

    def get(self, config: PropagationConfig) -> Backbone:
        from ino.propagation.api import load_propagation_backbone

        key = config.checkpoint_key
        if key not in self.loaded:
            spec = self.spec
            self.loaded[key] = load_propagation_backbone(
                spec.checkpoint, config, arch=spec.arch, patch_size=spec.patch_size, seed=spec.seed
            )
        return self.loaded[key]


def _plan(
    model: ModelSpec,
    backbones: _Backbones,
    tasks: Sequence[TaskSpec],
    out: Path,
    overrides: Mapping[str, object],
    max_frames: int | None,
) -> list[_Cell]:
    from ino.propagation.presets import for_patch_size, resolve_config
    from ino.propagation.run_state import run_settings

    cells = []
    for spec in tasks:
        task = get_task(spec.name)
        preset = spec.preset or task.default_preset
        config = resolve_config(preset, **{**overrides, **({"checkpoint_key": model.which} if model.which else {})})
        backbone = backbones.get(config)
        config = for_patch_size(config, backbone.patch_size)
        propagation = run_settings(backbone, model.checkpoint, preset, config)
        settings = {
            "task": task.name,
            "root": str(Path(spec.root).resolve()),
            "options": dict(spec.options),
            "max_frames": max_frames if task.max_frames else None,
            "propagation": propagation,
        }
        info = {"source": backbone.source, "arch": backbone.arch, "patch_size": backbone.patch_size}
        card = protocol_card(task, preset, config, info)
        folder = out / model.name / task.name
        cells.append(_Cell(model, task, spec, preset, config, folder, propagation, settings, card, info))
    return cells


def _machine(dist: Distributed) -> dict[str, object]:
    import torch

    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(dist.device),
        "ranks": dist.world_size,
    }


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def run_suite(
    models: Sequence[ModelSpec],
    tasks: Sequence[TaskSpec],
    out: str | Path,
    *,
    overrides: Mapping[str, object] | None = None,
    max_frames: int | None = None,
    batch_size: int = 1,
    progress: bool = True,
    command: str = "",
    dist: Distributed | None = None,
) -> dict[str, Path]:
    """Run every task for every model and write ``<out>/suite.{md,json,html}``; see the module docstring.

    ``overrides``: propagation settings replaced in every task's preset (``short_side``, ``feature_dtype``, ...);
    ``max_frames``: a quick check on each sequence's first frames, marked as such in the table; ``dist``: this rank
    of a ``torchrun`` job (None: one process on the default device). Returns the table's paths (rank 0; other
    ranks return an empty mapping).
    """
    from ino.utils import distributed
    from ino.utils.outputs import exclusive, refuse_inside

    _check_inputs(models, tasks, max_frames)
    dist = dist or distributed.Distributed(0, 1, 0, distributed.resolve_device(None))
    out, main = Path(out), dist.is_main
    with contextlib.ExitStack() as stack:
        problem = None
        if main:
            try:
                refuse_inside(out, [Path(t.root) for t in tasks])
                stack.enter_context(exclusive(out, "ino suite"))
            except InoError as error:
                problem = error
        if distributed.any_over_ranks(problem is not None):
            raise problem or InoError(f"{out}: rank 0 could not start the suite; see its message")
        kept = {0: _Backbones(models[0])}  # the first model's weights, loaded while planning, run next
        plans = [_plan(m, kept.get(i) or _Backbones(m), tasks, out, overrides or {}, max_frames)
                 for i, m in enumerate(models)]  # fmt: skip
        statuses: dict[Path, str | None] = {}
        if main:
            try:
                statuses = {cell.folder: check_record(cell.folder, cell.settings) for plan in plans for cell in plan}
            except InoError as error:
                problem = error
        if distributed.any_over_ranks(problem is not None):
            raise problem or InoError(f"{out}: rank 0 found a task folder made with other settings; see its message")
        machine = _machine(dist)
        for index, plan in enumerate(plans):
            backbones = kept.pop(index, None) or _Backbones(plan[0].model)  # one model's weights at a time
            for cell in plan:
                if distributed.any_over_ranks(main and statuses[cell.folder] == SCORED):
                    if main:
                        log.info(
                            "%s / %s: already scored with these settings, skipped", cell.model.name, cell.task.name
                        )
                    continue
                _run_cell(cell, backbones, statuses.get(cell.folder), max_frames, batch_size, progress, dist)
                if main:
                    _write_table(out, plans, machine, command)
        return _write_table(out, plans, machine, command) if main else {}


def _run_cell(
    cell: _Cell,
    backbones: _Backbones,
    status: str | None,
    max_frames: int | None,
    batch_size: int,
    progress: bool,
    dist: Distributed,
) -> None:
    """Propagate one model on one task (every rank its share), then score and record it (rank 0)."""
    from ino.propagation.api import VideoPropagator
    from ino.utils.outputs import exclusive

    main = dist.is_main
    with exclusive(cell.folder, "ino suite") if main else contextlib.nullcontext():
        started = {"settings": cell.settings, "status": STARTED, "started_at": _now(), "ino_version": __version__}
        if main:
            write_record(cell.folder, started)
            log.info("%s / %s: preset %s, %s", cell.model.name, cell.task.name, cell.preset,
                     "resumed" if status == STARTED else "started")  # fmt: skip
        propagator = VideoPropagator(backbones.get(cell.config), cell.config, device=dist.device, batch_size=batch_size)
        options = dict(cell.spec.options)
        if cell.task.max_frames and max_frames is not None:
            options["max_frames"] = max_frames
        clock = time.perf_counter()
        root = Path(cell.spec.root)
        names = cell.task.propagate(
            root, cell.folder, propagator, cell.run_settings, progress=progress, dist=dist, **options
        )
        propagated = time.perf_counter() - clock
        if not main:
            return
        clock = time.perf_counter()
        scores = cell.task.score(root, cell.folder, names, max_frames=max_frames, progress=progress)
        write_record(
            cell.folder,
            {
                **started,
                "status": SCORED,
                "scored_at": _now(),
                "names": names,
                "scores": scores.to_json(),
                "card": cell.card,
                "backbone": cell.backbone,
                "resumed": status == STARTED,
                "seconds": {"propagate": round(propagated, 3), "score": round(time.perf_counter() - clock, 3)},
                "host": platform.node(),
                "device": str(dist.device),
                "ranks": dist.world_size,
            },
        )


def _write_table(out: Path, plans: list[list[_Cell]], machine: dict[str, object], command: str) -> dict[str, Path]:
    from ino.suite.report import build_document, write_table

    cells = [
        {
            "model": cell.model.name,
            "checkpoint": cell.model.checkpoint,
            "task": cell.task.name,
            "folder": cell.folder.relative_to(out).as_posix(),
            "record": read_record(cell.folder),
        }
        for plan in plans
        for cell in plan
    ]
    document = build_document(cells, {**machine, "date": _now()}, command)
    return write_table(out, document)
