"""The GPU proof's inputs (``--data``): checked up front, so that a run never wastes GPU time on a missing folder or
an unreadable sequence; and ``--stage``, which prepares them on a machine with PyAV for carrying to a GPU machine."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
PREPARED, ORIGINALS, DAVIS = "videos-320p", "videos", "davis-dev"


class InputError(Exception):
    """Bad input found before any measurement: one line, exit status 2."""


@dataclass
class Inputs:
    """What the run reads, checked up front."""

    videos: Path  # the training / loader videos: prepared copies when there are any
    videos_note: str
    n_videos: int
    davis: Path
    sequences: list[str]
    synthetic: bool = False


def count_videos(folder: Path) -> int:
    from ino.data.sources import list_videos

    try:
        return len(list_videos([str(folder)]))
    except Exception:
        return 0


def check_davis(root: Path) -> list[str]:
    """The sequences of a DAVIS-layout folder, each with >= 3 frames and a first annotation holding an object (read,
    not just listed); else InputError."""
    from ino.data.davis import DavisLayout, read_object_ids

    try:
        layout = DavisLayout(root)
        names = layout.sequences()
        for name in names:
            frames = layout.image_frames(name)
            first = layout.annotation_dir(name) / f"{frames[0].stem}.png" if frames else None
            if len(frames) < 3 or first is None or not first.is_file() or not read_object_ids(first).any():
                raise InputError(f"{root}: sequence {name} has < 3 frames or no first-frame annotation with an object")
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"{root}: not a readable DAVIS layout ({error})") from None
    if not names:
        raise InputError(f"{root}: no sequences")
    return names


def synthesise(folder: Path) -> Path:
    """A tiny DAVIS-layout set and a few unlabeled frame-folder videos (``ino synth``'s generator), for a smoke
    run on a machine without the shared data: the CI test then never skips."""
    from ino.data.synthetic import SynthConfig, write_benchmark

    write_benchmark(folder / DAVIS, 2, SynthConfig(frames=6), seed=0)
    write_benchmark(folder / "unlabeled", 3, SynthConfig(frames=24), seed=1)
    (folder / ORIGINALS).symlink_to(folder / "unlabeled" / "JPEGImages" / "480p", target_is_directory=True)
    return folder


def check_inputs(args: argparse.Namespace, work: Path) -> Inputs:
    """Fail at once, with one line, on anything that would waste GPU time later; prepare copies when possible."""
    data, synthetic = args.data, False
    if not data.is_dir():
        if not args.smoke:
            raise InputError(f"--data {data}: no such folder")
        data, synthetic = synthesise(work / "synthetic-data"), True
    davis = data / DAVIS
    sequences = check_davis(davis)
    prepared, originals = data / PREPARED, data / ORIGINALS
    if count_videos(prepared) >= args.min_videos:
        videos, note = prepared, f"`ino prepare` copies ({prepared})" + prepare_settings(prepared)
    elif count_videos(originals) >= args.min_videos:
        videos, note = originals, f"{'synthetic frame folders' if synthetic else 'original clips'} ({originals})"
        from ino.data.videos import import_av

        if import_av() is not None and not synthetic:
            videos, note = prepare_copies(originals, work / PREPARED), f"`ino prepare` copies made now from {originals}"
        elif not synthetic:
            note += ": PyAV is missing, so `ino prepare` cannot run; pass prepared copies as <data>/videos-320p"
    else:
        raise InputError(f"--data {data}: fewer than {args.min_videos} videos in {prepared} or {originals}")
    return Inputs(videos, note, count_videos(videos), davis, sequences, synthetic)


def prepare_settings(folder: Path) -> str:
    try:
        settings = json.loads((folder / "prepare-report.json").read_text())["settings"]
        return f", settings {settings}"
    except (OSError, ValueError, KeyError):
        return ""


def prepare_copies(source: Path, target: Path) -> Path:
    """``ino prepare --short-side 320`` (needs PyAV): the fast-seeking copies the docs tell users to train on."""
    from ino.data.transcode import TranscodeConfig, prepare

    report_ = prepare(source, target, TranscodeConfig(short_side=320), workers=os.cpu_count() or 1, progress=False)
    if report_.failed:
        raise InputError(f"ino prepare failed on {len(report_.failed)} file(s): {report_.failed[0]}")
    return target


def stage(args: argparse.Namespace) -> int:
    """Fill ``--stage`` with what a GPU run reads: davis-dev as is, and prepared copies of the videos."""
    target: Path = args.stage
    check_davis(args.data / DAVIS)
    shutil.copytree(args.data / DAVIS, target / DAVIS, dirs_exist_ok=True)
    prepare_copies(args.data / ORIGINALS, target / PREPARED)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"staged {target}: {size / 2**20:.1f} MiB ({count_videos(target / PREPARED)} prepared videos)")
    return 0
