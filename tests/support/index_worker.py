"""Run by tests/training/test_index_ranks.py under ``torch.distributed.run``: build the training loop's clip index
on each rank, counting this rank's probes, in three cases (shared cache, rank 0 fails, a rank sees other files),
and write what each rank saw to ``OUT/rank<r>.json``."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import ino.data.probes
from ino.configs.loading import load_config
from ino.data.sources import ClipWarning, list_videos
from ino.errors import InoError
from ino.training.loop import _clip_index
from ino.utils import distributed

probed: list[str] = []
original_probe = ino.data.probes.probe_video


def counting_probe(path: str, backend: str) -> object:
    probed.append(path)
    return original_probe(path, backend)


def run_case(data: str, run_dir: Path, dist: distributed.Distributed, cache_dir: str | None = None) -> dict:
    """One index build by the loop's own code: what this rank probed, got, or was told."""
    config = load_config(["tiny"])
    config.data, config.output_dir, config.clips.cache_dir = [data], str(run_dir), cache_dir
    videos = list_videos(data)
    if dist.rank == 1 and "other-files" in run_dir.name:
        videos = videos[1:]  # this rank's copy of the data lacks a video
    del probed[:]
    try:
        index = _clip_index(config, videos, run_dir, dist)
    except InoError as error:
        return {"error": str(error), "probed": len(probed)}
    return {"identity": index.identity(), "from_cache": index.from_cache, "clips": index.n_clips, "probed": len(probed)}


def main() -> None:
    data, out = sys.argv[1], Path(sys.argv[2])
    ino.data.probes.probe_video = counting_probe  # type: ignore[assignment]
    warnings.simplefilter("ignore", ClipWarning)
    dist = distributed.setup("cpu")
    blocker = out / "not-a-folder"
    if dist.is_main:
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("a file where the cache folder should be")
    distributed.barrier()
    report = {
        "shared": run_case(data, out / "shared", dist),
        "rank0-fails": run_case(data, out / "rank0-fails", dist, cache_dir=str(blocker / "cache")),
        "other-files": run_case(data, out / "other-files", dist),
    }
    distributed.cleanup()
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
