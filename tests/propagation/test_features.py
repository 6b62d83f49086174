"""Background frame decoding: the thread behind ``prefetch`` ends with its consumer, on every error path.

Issue 21 case 9: a bad first mask stopped ``VideoPropagator.run`` after it had started the decoding thread, which
went on decoding while the interpreter exited; killed inside OpenCV, it aborted the process (exit 134) after the
error line, in about half the runs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from ino.data.davis import write_mask
from ino.errors import InoError
from ino.models.weights import load_backbone
from ino.propagation.api import VideoPropagator
from ino.propagation.features import map_frames, prefetch


def prefetch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ino-prefetch"]


def slow_frames(n: int, seconds: float = 0.3) -> Iterator[np.ndarray]:
    """Frames decoded in a background thread, each taking ``seconds`` (a large JPEG), GIL released meanwhile."""

    def read(index: int) -> np.ndarray:
        time.sleep(seconds)
        return np.full((64, 96, 3), index, dtype=np.uint8)

    return map_frames(read, range(n))


def test_closing_prefetch_waits_for_its_thread() -> None:
    before = prefetch_threads()
    stream = slow_frames(10)
    assert next(stream)[0, 0, 0] == 0
    assert len(prefetch_threads()) == len(before) + 1  # decoding the next frames
    stream.close()
    assert prefetch_threads() == before


def test_prefetch_hands_on_errors_and_ends_its_thread() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("broken frame")

    before = prefetch_threads()
    stream = prefetch(items(), depth=1)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="broken frame"):
        next(stream)
    assert prefetch_threads() == before


def test_a_bad_first_mask_stops_the_decoding_thread_before_the_error_returns() -> None:
    model = load_backbone("random", arch="vit_tiny", patch_size=8)
    propagator = VideoPropagator(model, "ino-davis", device="cpu", short_side=64)
    before = prefetch_threads()
    for mask, message in [
        (np.zeros((64, 96), dtype=np.uint8), "has no object"),
        (np.ones((32, 48), dtype=np.uint8), "is 48x32"),
        (None, "needs the mask of frame 0"),
    ]:
        with pytest.raises(InoError, match=message):
            list(propagator.run(slow_frames(8), {} if mask is None else {0: mask}))
        assert prefetch_threads() == before, message


def noise_davis(root: Path, first_mask: np.ndarray, frames: int = 6) -> Path:
    """A one-sequence DAVIS layout of 1500x1000 noise JPEGs (slow to decode, so a thread is still at it on exit)."""
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1500, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    (root / "JPEGImages" / "480p" / "noise").mkdir(parents=True)
    for t in range(frames):
        (root / "JPEGImages" / "480p" / "noise" / f"{t:05d}.jpg").write_bytes(data)
    write_mask(root / "Annotations" / "480p" / "noise" / "00000.png", first_mask)
    return root


@pytest.mark.slow
def test_a_bad_first_mask_exits_2_every_time(tmp_path: Path) -> None:
    empty = noise_davis(tmp_path / "empty", np.zeros((1000, 1500), dtype=np.uint8))
    resized = noise_davis(tmp_path / "resized", np.ones((500, 750), dtype=np.uint8))
    command = [sys.executable, "-m", "ino", "propagate", "--checkpoint", "random", "--arch", "vit_tiny"]
    command += ["--scale-size", "64", "--quiet"]
    runs = []
    for wave in range(2):  # five processes at a time: the ten runs take the time of two
        started = [
            subprocess.Popen(
                [*command, "--davis-root", str(root), "--out", str(tmp_path / f"out-{wave}-{i}")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, root in enumerate([empty, resized, empty, resized, empty])
        ]
        runs += [(process.communicate(timeout=300)[1], process.returncode) for process in started]
    for stderr, code in runs:
        assert code == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ino propagate: error: sequence 'noise': mask of frame 0")
        assert "has no object" in lines[0] or "is 750x500 (WxH) but the frames are 1500x1000" in lines[0]
