"""The field's label-propagation table in one command: every task (DAVIS, JHMDB, VIP, YouTube-VOS) for one or
several backbones, resumable, sharded under ``torchrun``, written as Markdown, JSON and a self-contained HTML page.

- :mod:`ino.suite.tasks`: the task registry (default preset, how to propagate, how to score, the card's data);
- :mod:`ino.suite.run`: :func:`run_suite`, the orchestration (``<out>/<model>/<task>/``, resume, ranks);
- :mod:`ino.suite.report`: the table files; :mod:`ino.suite.published`: quoted numbers, with their sources.

Nothing here imports torch at import time (``ino suite --help`` reads the registry).
"""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "ModelSpec": "run",
        "TaskSpec": "run",
        "run_suite": "run",
        "TASKS": "tasks",
        "Task": "tasks",
    },
)
