"""Tiny synthetic videos for tests that must not need shared data: frames that name themselves by colour, and a
drifting texture for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_FRAMES = 40


def colour(i: int) -> np.ndarray:
    """The solid RGB colour of frame i: neighbours are ~10 levels apart, so a decoded frame names itself."""
    return np.array([6 * i, 245 - 6 * i, 20 + 5 * i], dtype=np.uint8)


def frame_index(frame: np.ndarray) -> int:
    """Which synthetic frame this is, from its mean colour (yuv420p and lossy coding move it by a few levels)."""
    mean = frame.reshape(-1, 3).mean(0)
    distance = [np.linalg.norm(mean - colour(i)) for i in range(MAX_FRAMES)]
    # under half the distance between neighbours, the nearest colour is unambiguous
    assert min(distance) < 4.9, f"frame colour {mean} is no synthetic frame's"
    return int(np.argmin(distance))


def write_video(path: Path, n_frames: int, fps: int = 30, height: int = 48, width: int = 64) -> Path:
    """``n_frames`` solid-colour frames at ``fps``: libx264 (PyAV), a keyframe every 6 frames, with B-frames."""
    import av

    assert n_frames <= MAX_FRAMES
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 6
        stream.options = {"crf": "10", "bf": "2"}
        for i in range(n_frames):
            frame = np.broadcast_to(colour(i), (height, width, 3)).copy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_clip(path: Path, frames: int, seed: int, size: tuple[int, int] = (72, 112), fps: float = 24.0) -> None:
    """A textured pattern drifting across the frame: something for the crops to match between frames."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (size[0] + frames * 2, size[1] + frames * 2, 3), dtype=np.uint8)
    from ino.utils.viz import OverlayVideoWriter

    with OverlayVideoWriter(path, fps) as writer:
        for t in range(frames):
            writer.write(texture[t * 2 : t * 2 + size[0], t : t + size[1]])
