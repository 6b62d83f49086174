"""The suite's tasks: for each, its default preset, how to propagate, how to score, and the data on its card.

A task is one :class:`Task` in :data:`TASKS`; adding one is a few lines (``register(Task(...))``), and the command
gains ``--<name>-root`` and ``--<name>-preset`` from it. Both callables are named by module and attribute and
imported only when a task runs, so that reading the registry (``ino suite --help``) imports no torch.

The propagation callable has the shape of :func:`ino.propagation.runs.propagate_davis` (JHMDB:
:func:`ino.propagation.keypoint_runs.propagate_jhmdb`, VIP: :func:`ino.propagation.part_runs.propagate_vip`)::

    propagate(root, out, propagator, settings, *, progress, dist, **options) -> list[str]

writing every sequence's (video's) output under ``out``, resumably (``settings`` go to the run state), doing only
this rank's share under ``torchrun`` and returning the names of the whole run on every rank. ``options`` are the
task's own keywords (``max_frames`` when the task takes ``--max-frames``; YouTube-VOS ``all_frames``; JHMDB
``list_file``). The scoring
callable is ``score(root, results, names, *, max_frames, progress) -> TaskScores`` (:mod:`ino.suite.adapters`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ino.errors import InoError


@dataclass(frozen=True)
class LazyFunction:
    """A function named by module and attribute, imported on first call."""

    module: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"

    def resolve(self) -> Callable[..., Any]:
        """The function, or an :class:`InoError` saying this version of ``ino`` does not have it."""
        try:
            return getattr(importlib.import_module(self.module), self.name)
        except (ImportError, AttributeError):
            raise InoError(f"{self.qualified} does not exist in this version of ino") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


@dataclass(frozen=True)
class Task:
    """One benchmark of the table.

    ``metrics``: the headline numbers, in percent, the first of which is charted and shown in the overview (none
    for YouTube-VOS, which only its evaluation server scores). ``card``: what the protocol card says about the data
    (the preset's settings are added from the configuration actually used). ``max_frames``: whether the run and
    the scorer take ``--max-frames`` (a quick check on each sequence's first frames).
    """

    name: str
    title: str
    default_preset: str
    propagate: Callable[..., list[str]]
    score: Callable[..., Any]
    metrics: tuple[str, ...]
    item: str
    card: Mapping[str, str]
    max_frames: bool = False
    options: tuple[str, ...] = field(default=())

    @property
    def headline(self) -> str | None:
        return self.metrics[0] if self.metrics else None

    def check_available(self, preset: str) -> None:
        """Stop with one line, before any work, when the task's preset is not one of this version of ``ino``."""
        from ino.propagation.presets import PRESETS

        if preset not in PRESETS:
            raise InoError(
                f"--{self.name}-root: the {self.title} task's preset {preset!r} is not in this version of ino; "
                f"choose one with --{self.name}-preset ({', '.join(sorted(PRESETS))})"
            )


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add ``task`` to the registry (the order of registration is the order of the table)."""
    TASKS[task.name] = task
    return task


#: ``ino suite --protocol``: each task's preset under one family. ``ino``: INO's own protocol where it has one
#: (DAVIS, YouTube-VOS), CropMAE's ViT protocol elsewhere; ``crw`` and ``cropmae``: the references' settings (neither
#: has a YouTube-VOS protocol: INO's is used there and the card says so). A task's ``--<task>-preset`` wins.
PROTOCOLS: dict[str, dict[str, str]] = {
    "ino": {"davis": "ino-davis", "jhmdb": "cropmae-jhmdb", "vip": "cropmae-vip", "ytvos": "ino-ytvos"},
    "cropmae": {"davis": "cropmae-davis", "jhmdb": "cropmae-jhmdb", "vip": "cropmae-vip", "ytvos": "ino-ytvos"},
    "crw": {"davis": "crw-davis", "jhmdb": "crw-jhmdb", "vip": "crw-vip", "ytvos": "ino-ytvos"},
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise InoError(f"unknown suite task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def _adapter(name: str) -> LazyFunction:
    return LazyFunction("ino.suite.adapters", name)


register(
    Task(
        name="davis",
        title="DAVIS-2017",
        default_preset="ino-davis",
        propagate=LazyFunction("ino.propagation.runs", "propagate_davis"),
        score=_adapter("score_davis"),
        metrics=("J&F-Mean", "J-Mean", "F-Mean"),
        item="sequence",
        card={
            "dataset": "DAVIS-2017 semi-supervised, 480p (JPEGImages/480p, Annotations/480p)",
            "split": "ImageSets/2017/val.txt (every annotated sequence when the folder has no lists)",
            "frames scored": "every annotated frame but the first and the last (davis2017-evaluation)",
            "label encoding": "object ids of the first frame, one channel per object plus background",
            "metric": "J&F-Mean = (J-Mean + F-Mean) / 2 over all objects, in percent",
        },
        max_frames=True,
    )
)
register(
    Task(
        name="jhmdb",
        title="JHMDB keypoints",
        default_preset="cropmae-jhmdb",
        propagate=LazyFunction("ino.propagation.keypoint_runs", "propagate_jhmdb"),
        score=_adapter("score_jhmdb"),
        metrics=("PCK@0.1", "PCK@0.2"),
        item="video",
        card={
            "dataset": "JHMDB (Rename_Images/, joint_positions/)",
            "split": "the videos of the run's list (CRW and CropMAE: the 268-video split-1 test list)",
            "frames scored": "every annotated frame but the first (eval_pck.py)",
            "label encoding": "15 joints as Gaussian heat maps (sigma 0.5 grid cells) plus a background channel; "
            "joints read back as the top-k weighted mean of each map",
            "metric": "PCK at 0.1 and 0.2 of 0.6 x the ground-truth box diagonal, mean over joints, in percent",
        },
        max_frames=True,
        options=("list_file",),
    )
)
register(
    Task(
        name="vip",
        title="VIP parts",
        default_preset="cropmae-vip",
        propagate=LazyFunction("ino.propagation.part_runs", "propagate_vip"),
        score=_adapter("score_vip"),
        metrics=("mIoU",),
        item="video",
        card={
            "dataset": "VIP_Fine (Images/, Annotations/Category_ids/)",
            "split": "lists/val_videos.txt (every annotated video when there is no list)",
            "frames scored": "every annotated frame, the first included (eval_vip.py)",
            "label encoding": "the 20 part classes of the first annotated frame, one channel each",
            "metric": "mean IoU over the 20 classes from one confusion matrix (0/0 classes skipped), in percent",
        },
        max_frames=True,
    )
)
register(
    Task(
        name="ytvos",
        title="YouTube-VOS 2018",
        default_preset="ino-ytvos",
        propagate=_adapter("propagate_ytvos_task"),
        score=_adapter("score_ytvos"),
        metrics=(),
        item="video",
        card={
            "dataset": "YouTube-VOS 2018 valid (valid/; valid_all_frames/ with --all-frames)",
            "split": "every video of valid/",
            "frames scored": "none here: the evaluation server scores the sparse valid/ frames; Annotations.zip "
            "is the submission",
            "label encoding": "object ids; an object first annotated at a later frame starts its own reference "
            "chain there",
            "metric": "J and F, seen and unseen, from the CodaLab server",
        },
        options=("all_frames",),
    )
)
