"""What a results folder holds, and how the ranks of a ``torchrun`` job share one: state, lock and work split.

``<out>/.ino-propagate.json`` records the settings a folder's results were made with (backbone, protocol) and the
sequences finished under them: a re-run skips those, and a re-run with other settings is refused rather than
mixing results. Under ``torchrun --nproc-per-node N -m ino propagate``:

- rank 0 alone takes the folder's lock and checks the state; if it cannot (another writer, other settings), every
  rank stops before any work;
- the sequences left to do are split by frame count, largest first, each to the least loaded rank (so the ranks
  finish close together, whatever the order of the list);
- each rank records what it finishes in a file of its own (``.ino-propagate.rank<r>.json``: one writer per file),
  and rank 0 folds those into the state when every rank is done. A rank that is killed leaves its file behind; the
  next run folds it in first, so what was finished is kept and only the unfinished sequences are redone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ino.errors import InoError
from ino.propagation.presets import SPEED_ONLY, PropagationConfig
from ino.utils import distributed
from ino.utils.atomic import atomic_write_text
from ino.utils.outputs import exclusive

STATE_FILE = ".ino-propagate.json"
SHARD_GLOB = ".ino-propagate.rank*.json"
#: How long a rank that finished its share waits for the others: a CPU rank's last sequence can take an hour.
WAIT_FOR_RANKS = timedelta(hours=24)
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ino.models.timm_backbone import Backbone


def _shard_file(out: Path, rank: int) -> Path:
    return out / f".ino-propagate.rank{rank}.json"


class RunState:
    """The settings a results folder was made with and the sequences finished under them.

    ``shard`` None (one process) records into the state file itself; a rank of a job records into its own file,
    which :meth:`consolidate` (rank 0, holding the lock) folds into the state file.
    """

    def __init__(self, out: Path, settings: Mapping[str, object], shard: int | None = None) -> None:
        self.out, self.path = out, out / STATE_FILE
        self.settings = json.loads(json.dumps(settings))
        self.shard = shard
        self.finished: list[str] = []
        self.mine: list[str] = []
        for file in [self.path, *sorted(out.glob(SHARD_GLOB))]:
            if file.is_file():
                self.finished += [n for n in self._read(file) if n not in self.finished]

    def _read(self, file: Path) -> list[str]:
        try:
            stored = json.loads(file.read_text())
            previous, finished = _with_later_settings(stored["settings"], self.settings), list(stored["finished"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise InoError(f"{file}: unreadable run state ({error}); delete it to start over") from None
        if previous != self.settings:
            changed = ", ".join(changed_keys(previous, self.settings))
            raise InoError(
                f"{self.out} holds results made with other settings (changed: {changed}); "
                "choose another --out or delete that folder"
            )
        return finished

    def is_finished(self, name: str, output: Path) -> bool:
        """Recorded as finished, and its output (a sequence's folder, a video's keypoint file) is still there."""
        return name in self.finished and output.exists()

    def finish(self, name: str) -> None:
        if name not in self.finished:
            self.finished.append(name)
        self.mine.append(name)
        if self.shard is None:
            self._write(self.path, self.finished)
        else:
            self._write(_shard_file(self.out, self.shard), self.mine)

    def _write(self, file: Path, finished: list[str]) -> None:
        atomic_write_text(file, json.dumps({"settings": self.settings, "finished": finished}, indent=1) + "\n")

    def consolidate(self) -> None:
        """Fold every rank's file into the state file, then remove them (rank 0, holding the lock)."""
        shards = sorted(self.out.glob(SHARD_GLOB))
        for file in shards:
            self.finished += [n for n in self._read(file) if n not in self.finished]
        if shards or self.finished:
            self._write(self.path, self.finished)
        for file in shards:
            file.unlink()


def _with_later_settings(stored: dict[str, object], current: Mapping[str, object]) -> dict[str, object]:
    """A stored run's settings plus the protocol settings added to ``ino`` since it was written, at their defaults.

    A new :class:`PropagationConfig` setting always defaults to what propagation did before it existed, so a
    folder written by an older ``ino`` resumes when the current run keeps those defaults, and is refused, naming
    the setting, when it does not.
    """
    config, now = stored.get("config"), current.get("config")
    if not (isinstance(config, dict) and isinstance(now, Mapping)):
        return stored
    defaults = json.loads(json.dumps(dataclasses.asdict(PropagationConfig())))
    later = {key: defaults[key] for key in now if key not in config and key in defaults}
    return {**stored, "config": {**config, **later}} if later else stored


def changed_keys(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    """The dotted names of the settings that differ (``config.radius``), for a refusal that names them."""
    old, new = _flatten(before), _flatten(after)
    return sorted(key for key in {*old, *new} if old.get(key) != new.get(key))


def run_settings(model: Backbone, checkpoint: str, preset: str, config: PropagationConfig) -> dict[str, object]:
    """What a results folder depends on: the backbone (geometry and the file's identity included) and the protocol
    without its speed-only settings (``SPEED_ONLY``), so that a resumed run may change those."""
    protocol = {key: value for key, value in dataclasses.asdict(config).items() if key not in SPEED_ONLY}
    settings: dict[str, object] = {
        "backbone": model.source,
        "arch": model.arch,
        "patch_size": model.patch_size,
        "preset": preset,
        "config": protocol,
    }
    path = Path(checkpoint)
    if checkpoint != "random" and path.is_file():
        stat = path.stat()
        settings["checkpoint_file"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return settings


def _flatten(settings: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted keys, so that a refusal names the exact setting that changed."""
    flat: dict[str, object] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def split_by_frames(names: Sequence[str], frames: Mapping[str, int], world_size: int) -> list[list[str]]:
    """Each rank's share: largest first, every sequence to the rank with the fewest frames so far (lowest rank on a
    tie), so that the longest share is at most one sequence longer than the ideal."""
    loads = [(0, rank) for rank in range(world_size)]
    shares: list[list[str]] = [[] for _ in range(world_size)]
    for name in sorted(names, key=lambda n: -frames[n]):  # stable: equal counts keep the list's order
        load, rank = heapq.heappop(loads)
        shares[rank].append(name)
        heapq.heappush(loads, (load + frames[name], rank))
    return shares


@contextlib.contextmanager
def shared_run(
    out: Path, settings: Mapping[str, object], dist: distributed.Distributed | None = None
) -> Iterator[RunState]:
    """The folder's run state for this rank, with rank 0 holding the folder's lock for the whole block; see the
    module docstring."""
    rank, world_size = (dist.rank, dist.world_size) if dist else (0, 1)
    with contextlib.ExitStack() as stack:
        state, problem = None, None
        if rank == 0:
            try:
                stack.enter_context(exclusive(out, "ino propagate"))
                state = RunState(out, settings)
                state.consolidate()  # what a killed job's ranks finished, before the new split
            except InoError as error:
                problem = error
        if distributed.any_over_ranks(problem is not None):
            raise problem or InoError(f"{out}: rank 0 could not start the run; see its message")
        if world_size == 1:
            assert state is not None
            yield state
            return
        yield RunState(out, settings, shard=rank)


def run_shared(
    state: RunState,
    names: Sequence[str],
    folder_of: Callable[[str], Path],
    frame_count: Callable[[str], int],
    work: Callable[[str], None],
    dist: distributed.Distributed | None,
    progress: tuple[str, str] | None = None,
) -> list[str]:
    """Run ``work`` on this rank's share of the unfinished ``names`` and record each when done; returns the share.

    In a job, every rank then waits for the others, and rank 0 folds their records into the state: on return the
    whole run is done and recorded. ``progress``: (label, unit) of a bar over this rank's share.
    """
    rank, world_size = (dist.rank, dist.world_size) if dist else (0, 1)
    todo = []
    for name in names:
        if state.is_finished(name, folder_of(name)):
            if rank == 0:
                log.info("%s: already done, skipped", name)
        else:
            todo.append(name)
    share = todo
    if world_size > 1:
        frames = {n: frame_count(n) for n in todo}
        share = split_by_frames(todo, frames, world_size)[rank]
        log.info("rank %d of %d: %d of %d to do, %d frames", rank, world_size, len(share), len(todo),
                 sum(frames[n] for n in share))  # fmt: skip
    label, unit = progress or ("", "")
    for name in tqdm(share, desc=label, unit=unit, disable=progress is None or len(share) < 2):
        work(name)
        state.finish(name)
    if world_size > 1:
        distributed.barrier()
        if rank == 0:
            state.consolidate()
    return share
