"""``ino propagate --video`` never loses what a user has: a stopped re-run keeps the finished results, a complete one
replaces masks, overlay and contact sheet together, an identical one is skipped, and files ino did not write stay.

A tiny random-init ViT at a 32-pixel short side on a 12-frame drifting texture keeps each run to a few seconds.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.cli import main
from ino.data.davis import read_mask, write_mask
from ino.utils.outputs import written_by_ino
from ino.utils.viz import overlay_mask
from support.video_factory import write_clip

TINY = ["--checkpoint", "random", "--arch", "vit_tiny", "--scale-size", "32", "--n-last-frames", "1", "--radius", "2"]
FRAMES = 12


@pytest.fixture
def clip(tmp_path: Path) -> list[str]:
    """``--video`` and ``--mask`` arguments of a 12-frame clip with a rectangle as its first mask."""
    video, mask = tmp_path / "clip.mp4", tmp_path / "first.png"
    write_clip(video, FRAMES, seed=0)
    first = np.zeros((72, 112), dtype=np.uint8)
    first[20:50, 30:70] = 1
    write_mask(mask, first)
    return ["--video", str(video), "--mask", str(mask)]


def propagate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["propagate", *args])
    return code, capsys.readouterr().err


def results(out: Path) -> dict[str, tuple[bytes, int]]:
    """Every result file's bytes and modification time."""
    files = [*sorted((out / "masks").glob("*.png")), out / "overlay.mp4", out / "contact_sheet.png"]
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files if p.is_file()}


def frames(path: Path) -> np.ndarray:
    from ino.data.videos import iter_frames

    return np.stack(list(iter_frames(path))).astype(np.float32)


def assert_same_run(out: Path, reference: Path, clip: Path, other: dict[str, tuple[bytes, int]]) -> None:
    """``out`` holds one run's results: masks and sheet those of ``reference`` byte for byte, and an overlay that
    shows these masks rather than the ``other`` run's (x264 on several threads is not bit-exact from run to run,
    so the overlay is compared by what it shows)."""
    for name in ["contact_sheet.png", *(f"masks/{t:05d}.png" for t in range(FRAMES))]:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    video, shown = frames(clip), frames(out / "overlay.mp4")
    assert len(shown) == FRAMES
    for t in range(FRAMES):
        new = overlay_mask(video[t].astype(np.uint8), read_mask(out / "masks" / f"{t:05d}.png"))
        old = overlay_mask(
            video[t].astype(np.uint8), np.asarray(Image.open(io.BytesIO(other[f"masks/{t:05d}.png"][0])))
        )
        if not np.array_equal(new, old):
            assert np.abs(shown[t] - new).mean() < np.abs(shown[t] - old).mean(), f"overlay frame {t}"


def test_a_rerun_stopped_by_sigterm_keeps_the_finished_results_and_a_complete_one_replaces_them_together(
    clip: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert propagate(capsys, *clip, "--out", str(out), *TINY, "--quiet")[0] == 0
    before = results(out)
    assert len(before) == FRAMES + 2
    # the same job with another backbone (seed 1), in a process of its own, stopped while it propagates
    command = [sys.executable, "-m", "ino", "propagate", *clip, "--out", str(out), *TINY, "--seed", "1", "--quiet"]
    rerun = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    staging, deadline = out / ".partial-masks", time.monotonic() + 300  # a guard against a hang, not a timing
    while not (staging / "00001.png").exists():
        assert rerun.poll() is None and time.monotonic() < deadline, "the re-run ended before it could be stopped"
        time.sleep(0.005)
    rerun.send_signal(signal.SIGTERM)
    _, err = rerun.communicate(timeout=300)
    assert results(out) == before  # every mask, the overlay and the sheet: same bytes, not even rewritten
    assert not staging.exists()
    assert rerun.returncode == 143, err
    assert "stopped by SIGTERM" in err and f"previous results in {out} are as they were" in err
    # a complete re-run replaces all three: exactly what the same job writes into a new folder
    assert propagate(capsys, *clip, "--out", str(out), *TINY, "--seed", "1", "--quiet")[0] == 0
    assert propagate(capsys, *clip, "--out", str(fresh), *TINY, "--seed", "1", "--quiet")[0] == 0
    assert_same_run(out, fresh, Path(clip[1]), before)
    assert (out / "masks" / "00011.png").read_bytes() != before["masks/00011.png"][0]
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert hidden == [".ino-files", ".ino-propagate-video.json"]
    # the identical job again is recognised and changes nothing; once the user saved the mask again, it is redone
    finished = results(out)
    code, err = propagate(capsys, *clip, "--out", str(out), *TINY, "--seed", "1")  # INFO shows the skip
    assert code == 0 and "clip.mp4: already done with these settings and inputs" in err
    assert results(out) == finished
    mask = Path(clip[3])
    os.utime(mask, ns=(mask.stat().st_atime_ns, mask.stat().st_mtime_ns + 10**9))
    code, err = propagate(capsys, *clip, "--out", str(out), *TINY, "--seed", "1")
    assert code == 0 and "already done" not in err
    assert results(out)["masks/00000.png"][1] != finished["masks/00000.png"][1]
    assert_same_run(out, fresh, Path(clip[1]), before)


def test_overlay_and_contact_sheet_the_user_put_in_out_are_replaced_only_with_overwrite(
    clip: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "overlay.mp4").write_bytes(b"the user's own video")
    (out / "contact_sheet.png").write_bytes(b"the user's own picture")
    code, err = propagate(capsys, *clip, "--out", str(out), *TINY, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert f"output {out / 'overlay.mp4'} exists and was not written by ino" in err and "--overwrite" in err
    assert (out / "overlay.mp4").read_bytes() == b"the user's own video"
    assert (out / "contact_sheet.png").read_bytes() == b"the user's own picture"
    assert not (out / "masks").exists() and not (out / ".partial-masks").exists()
    (out / "overlay.mp4").unlink()
    code, err = propagate(capsys, *clip, "--out", str(out), *TINY, "--quiet")
    assert code == 2 and f"output {out / 'contact_sheet.png'} exists and was not written by ino" in err
    assert propagate(capsys, *clip, "--out", str(out), *TINY, "--quiet", "--overwrite")[0] == 0
    assert written_by_ino(out / "overlay.mp4") and written_by_ino(out / "contact_sheet.png")
    # a masks/ folder ino did not make is never replaced, --overwrite or not
    other = tmp_path / "other"
    (other / "masks").mkdir(parents=True)
    (other / "masks" / "00000.png").write_bytes(b"the user's mask")
    code, err = propagate(capsys, *clip, "--out", str(other), *TINY, "--quiet", "--overwrite")
    assert code == 2 and "masks exists and was not made by ino" in err and err.count("\n") == 1
    assert (other / "masks" / "00000.png").read_bytes() == b"the user's mask"
