"""Video and frame-folder reading: backends agree, random access equals sequential decoding, INO's 8-fps
resampling, and every bad input is an InoError that names the file."""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import ino.data.videos as videos
from ino.data.videos import iter_frames, probe_video, read_frames, resampled_indices
from ino.errors import InoError

N_TINY, TINY_FPS, TINY_H, TINY_W = 24, 24, 48, 64


def colour(i: int) -> np.ndarray:
    """The solid RGB colour of synthetic frame i: every channel moves by >= 5 per frame, so a frame names itself."""
    return np.array([10 * i, 200 - 5 * i, 60 + 7 * i], dtype=np.uint8)


def frame_index(frame: np.ndarray) -> int:
    """Which synthetic frame this is, from its mean colour (YUV 4:2:0 rounding and lossy coding move it by up to ~3)."""
    distance = [np.abs(frame.reshape(-1, 3).mean(0) - colour(i)).max() for i in range(N_TINY)]
    assert min(distance) < 5, f"frame colour {frame.reshape(-1, 3).mean(0)} is no synthetic frame's"
    return int(np.argmin(distance))


def write_tiny_video(path: Path) -> Path:
    """24 solid-colour frames at 24 fps: H.264 with a keyframe every 6 frames and B-frames (PyAV), or mpeg4 through
    OpenCV's writer where PyAV is absent."""
    frames = [np.broadcast_to(colour(i), (TINY_H, TINY_W, 3)).copy() for i in range(N_TINY)]
    try:
        import av
    except ImportError:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), TINY_FPS, (TINY_W, TINY_H))
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        return path
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=TINY_FPS)
        stream.width, stream.height, stream.pix_fmt = TINY_W, TINY_H, "yuv420p"
        stream.codec_context.gop_size = 6
        stream.options = {"crf": "12", "bf": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_video(tmp_path_factory.mktemp("video") / "tiny.mp4")


BACKENDS = ["opencv", pytest.param("pyav", marks=pytest.mark.skipif(videos.import_av() is None, reason="no PyAV"))]


# ------------------------------------------------------------------------------------------ synthetic video


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_and_sequential_frames_of_a_known_video(tiny: Path, backend: str) -> None:
    info = probe_video(tiny, backend)
    assert (info.n_frames, info.fps, info.height, info.width, info.backend) == (N_TINY, 24.0, TINY_H, TINY_W, backend)
    assert info.timestamps is not None and np.allclose(np.diff(info.timestamps), 1 / TINY_FPS)
    frames = list(iter_frames(tiny, backend))
    assert all(f.shape == (TINY_H, TINY_W, 3) and f.dtype == np.uint8 for f in frames)
    assert [frame_index(f) for f in frames] == list(range(N_TINY))
    assert [frame_index(f) for f in iter_frames(tiny, backend, start=9, stop=14)] == list(range(9, 14))
    assert [frame_index(f) for f in iter_frames(tiny, backend, start=20, info=info)] == [20, 21, 22, 23]
    assert list(iter_frames(tiny, backend, start=30)) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_frames_equals_sequential_decoding(tiny: Path, backend: str) -> None:
    sequential = np.stack(list(iter_frames(tiny, backend)))
    info = probe_video(tiny, backend)
    rng = np.random.default_rng(0)
    for trial in range(6):
        indices = rng.integers(0, N_TINY, size=4)
        clip = read_frames(tiny, indices, backend, info=info if trial % 2 else None)
        assert clip.shape == (4, TINY_H, TINY_W, 3)
        np.testing.assert_array_equal(clip, sequential[indices])
    np.testing.assert_array_equal(read_frames(tiny, [23, 5, 5, 0], backend), sequential[[23, 5, 5, 0]])
    assert read_frames(tiny, [], backend).shape == (0, TINY_H, TINY_W, 3)


@pytest.mark.parametrize(("backend", "opener"), [("opencv", "_cv_open"), ("pyav", "_av_open")])
def test_random_access_seeks_instead_of_decoding_from_the_start(tiny: Path, backend: str, opener: str, monkeypatch):
    """With a probe's info, a late frame is reached by one seek: the fallback would open the file a second time."""
    if backend == "pyav" and videos.import_av() is None:
        pytest.skip("no PyAV")
    info = probe_video(tiny, backend)
    calls = []
    original = getattr(videos, opener)
    monkeypatch.setattr(videos, opener, lambda path: calls.append(path) or original(path))
    assert frame_index(read_frames(tiny, [19], backend, info=info)[0]) == 19
    assert len(calls) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access_falls_back_when_the_seek_cannot_be_trusted(tiny: Path, backend: str) -> None:
    """Timestamps that do not match the file (a stale info) must cost speed, never wrong or repeated frames."""
    info = probe_video(tiny, backend)
    if backend == "pyav":  # frame 21's timestamp unknown: the seek run stops there and counting takes over
        stale = replace(info, pts=(*info.pts[:21], -7, *info.pts[22:]))
    else:  # OpenCV's landing cannot be confirmed
        stale = replace(info, timestamps=tuple(t + 0.5 for t in info.timestamps))
    assert [frame_index(f) for f in iter_frames(tiny, backend, start=19, stop=23, info=stale)] == [19, 20, 21, 22]
    sequential = np.stack(list(iter_frames(tiny, backend)))
    np.testing.assert_array_equal(read_frames(tiny, [22, 19], backend, info=stale), sequential[[22, 19]])


def test_auto_uses_opencv_when_pyav_is_missing(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    info = probe_video(tiny)
    assert info.backend == "opencv" and info.n_frames == N_TINY
    assert [frame_index(f) for f in read_frames(tiny, [3, 17])] == [3, 17]
    with pytest.raises(InoError, match=r"tiny\.mp4.*'pyav'.*not installed"):
        probe_video(tiny, "pyav")


def test_auto_prefers_pyav(tiny: Path) -> None:
    if videos.import_av() is None:
        pytest.skip("no PyAV")
    assert probe_video(tiny).backend == "pyav"


# ---------------------------------------------------------------------------------------------- resampling


def test_resampled_indices_spec_examples() -> None:
    assert resampled_indices(100, 30)[:4].tolist() == [0, 3, 7, 11]
    assert resampled_indices(100, 25)[:4].tolist() == [0, 3, 6, 9]
    np.testing.assert_array_equal(resampled_indices(82, 24), np.arange(0, 81, 3))  # floor(82/3) = 27 frames
    np.testing.assert_array_equal(resampled_indices(10, 8), np.arange(10))
    assert resampled_indices(3, 30).tolist() == []  # floor(3 * 8 / 30) = 0
    assert resampled_indices(4, 5).tolist() == [0, 0, 1, 1, 2, 3]  # upsampling repeats, as torchvision does


@pytest.mark.parametrize("fps", [24, 25, 30, 10, 20, 60, 30000 / 1001, 3725 / 126, 1454080 / 72773, 23.976, 12.5])
def test_resampled_indices_properties(fps: float) -> None:
    for n_frames in (0, 1, 7, 8, 50, 149, 768, 1000):
        indices = resampled_indices(n_frames, fps)
        exact = Fraction(fps).limit_denominator(100_000)
        assert len(indices) == math.floor(n_frames * 8 / exact) and indices.dtype == np.int64
        if len(indices):
            assert indices[0] == 0 and indices[-1] < n_frames and np.all(np.diff(indices) >= 1)
            k = np.arange(len(indices))
            np.testing.assert_array_equal(indices, [math.floor(i * exact / 8) for i in k])
            # torchvision's own float32 formula agrees at these lengths (it drifts only at thousands of frames)
            torchvision = np.floor(k.astype(np.float32) * np.float32(fps / 8)).astype(np.int64)
            if float(fps / 8).is_integer():
                torchvision = k * int(fps / 8)
            np.testing.assert_array_equal(indices, torchvision)


def test_resampled_indices_stay_exact_on_long_videos() -> None:
    """torchvision's float32 k * (29.97 / 8) rounds up to the next integer at k = 9076 (a 19-minute video)."""
    k = 9076
    truth = k * 30000 // (1001 * 8)
    assert math.floor(np.float32(k) * np.float32(30000 / 1001 / 8)) == truth + 1  # 34000.999 -> 34001.0
    assert resampled_indices(40_000, 30000 / 1001)[k] == truth
    assert resampled_indices(40_000, Fraction(30000, 1001))[k] == truth
    for fps, target in [(0, 8.0), (-24, 8.0), (24, 0)]:
        with pytest.raises(ValueError):
            resampled_indices(10, fps, target)


# ---------------------------------------------------------------------------------------------- folders


def make_folder(folder: Path, suffix: str, n: int = 5) -> list[np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (TINY_H, TINY_W, 3), dtype=np.uint8) for _ in range(n)]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:05d}{suffix}")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".00000.png").write_bytes(b"macOS resource fork, not a frame")
    return frames


def test_png_folder_is_a_lossless_video(tmp_path: Path) -> None:
    frames = make_folder(tmp_path / "seq", ".png")
    info = probe_video(tmp_path / "seq", folder_fps=30)
    assert (info.n_frames, info.fps, info.height, info.width, info.backend) == (5, 30.0, TINY_H, TINY_W, "folder")
    assert probe_video(tmp_path / "seq", "opencv").fps == videos.DEFAULT_FOLDER_FPS
    np.testing.assert_array_equal(np.stack(list(iter_frames(tmp_path / "seq"))), np.stack(frames))
    np.testing.assert_array_equal(np.stack(list(iter_frames(tmp_path / "seq", start=1, stop=3))), frames[1:3])
    np.testing.assert_array_equal(read_frames(tmp_path / "seq", [4, 0, 4]), np.stack([frames[i] for i in (4, 0, 4)]))


def test_jpeg_folder_equals_pil(tmp_path: Path) -> None:
    make_folder(tmp_path / "seq", ".JPG")
    files = sorted((tmp_path / "seq").glob("0*.JPG"))
    expected = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    np.testing.assert_array_equal(read_frames(tmp_path / "seq", range(5)), expected)


def test_davis_frame_folder_equals_pil(davis_dev: Path) -> None:
    folder = davis_dev / "JPEGImages" / "480p" / "surf"
    files = sorted(folder.glob("*.jpg"))
    info = probe_video(folder)
    assert (info.n_frames, info.height, info.width) == (len(files), 480, 854)
    indices = [len(files) - 1, 0, 17]
    expected = np.stack([np.asarray(Image.open(files[i]).convert("RGB")) for i in indices])
    np.testing.assert_array_equal(read_frames(folder, indices), expected)
    np.testing.assert_array_equal(next(iter_frames(folder, start=17)), expected[2])


# ---------------------------------------------------------------------------------------------- bad input


def bad_input_cases(tmp_path: Path, tiny: Path) -> list[tuple[str, Path, object]]:
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(tiny.read_bytes()[: tiny.stat().st_size // 2])
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    broken = tmp_path / "broken_folder"
    make_folder(broken, ".jpg", n=3)
    (broken / "00001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    mixed = tmp_path / "mixed_folder"
    make_folder(mixed, ".png", n=3)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(mixed / "00002.png")
    missing = tmp_path / "missing.mp4"
    return [
        ("no such", missing, lambda b: probe_video(missing, b)),
        ("no such", missing, lambda b: iter_frames(missing, b)),
        ("not a readable video", noise, lambda b: probe_video(noise, b)),
        ("not a readable video", noise, lambda b: list(iter_frames(noise, b))),
        ("not a readable video", noise, lambda b: read_frames(noise, [0], b)),
        ("not a readable video", truncated, lambda b: read_frames(truncated, [1], b)),
        ("has no images", empty, lambda b: probe_video(empty, b)),
        ("cannot read the frame image", broken / "00001.jpg", lambda b: list(iter_frames(broken, b))),
        ("cannot read the frame image", broken / "00001.jpg", lambda b: read_frames(broken, [2, 1], b)),
        ("differs from", mixed / "00002.png", lambda b: read_frames(mixed, [0, 1, 2], b)),
        ("index 3 out of range", broken, lambda b: read_frames(broken, [0, 3], b)),
        ("index 24 out of range", tiny, lambda b: read_frames(tiny, [2, 24], b)),
        ("index 99 out of range", tiny, lambda b: read_frames(tiny, [99], b, info=probe_video(tiny, b))),
        ("negative frame index -1", tiny, lambda b: read_frames(tiny, [-1, 2], b)),
        ("invalid frame range", tiny, lambda b: iter_frames(tiny, b, start=5, stop=2)),
        ("unknown video backend 'ffmpeg'", tiny, lambda b: probe_video(tiny, "ffmpeg")),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_bad_input_is_an_ino_error_naming_the_file(tmp_path: Path, tiny: Path, backend: str) -> None:
    for problem, culprit, call in bad_input_cases(tmp_path, tiny):
        with pytest.raises(InoError) as raised:
            call(backend)
        message = str(raised.value)
        assert str(culprit) in message and problem in message, (problem, message)
        assert "\n" not in message


# ---------------------------------------------------------------------------------------------- real clips


@pytest.fixture(scope="module")
def bmx(videos_dir: Path) -> Path:
    """854x480 H.264 at 24 fps, 90 frames, B-frames and a second keyframe at frame 64."""
    return videos_dir / "davis16-bmx-bumps.mp4"


def test_backends_agree_on_a_real_clip(bmx: Path) -> None:
    if videos.import_av() is None:
        pytest.skip("no PyAV")
    a, c = probe_video(bmx, "pyav"), probe_video(bmx, "opencv")
    assert (a.n_frames, a.fps, a.height, a.width) == (c.n_frames, c.fps, c.height, c.width) == (90, 24.0, 480, 854)
    assert np.allclose(a.timestamps, c.timestamps, atol=1e-6)
    differences = []
    for i, (x, y) in enumerate(zip(iter_frames(bmx, "pyav"), iter_frames(bmx, "opencv"), strict=True)):
        difference = np.abs(x.astype(np.int16) - y).mean()
        differences.append(difference)
        assert difference < 1.0, f"frame {i}: mean |PyAV - OpenCV| = {difference:.3f}"
    # Measured 0.0 on all 33 dev clips (both use FFmpeg's decoder and swscale); another FFmpeg build may round
    # chroma differently, which stays well under 1 grey level, while a channel swap or a one-frame shift is >> 1.
    assert len(differences) == 90 and np.mean(differences) < 0.5


@pytest.mark.parametrize(
    ("name", "backends"), [("davis16-bmx-bumps.mp4", ("pyav", "opencv")), ("ta-sample13.mp4", ("pyav",))]
)
def test_read_frames_equals_sequential_on_real_clips(videos_dir: Path, name: str, backends: tuple[str, ...]) -> None:
    """ta-sample13: 768 frames with keyframes at 0/250/500/750, so the seeks land mid-video."""
    path = videos_dir / name
    backends = tuple(b for b in backends if b == "opencv" or videos.import_av() is not None)
    if not backends:
        pytest.skip("no PyAV")
    for backend in backends:
        info = probe_video(path, backend)
        indices = np.random.default_rng(2).integers(0, info.n_frames, size=8)
        indices[0] = info.n_frames - 1
        clip = resampled_indices(info.n_frames, info.fps)[10:14]  # a training clip: 4 frames at 8 fps
        wanted = set(indices.tolist()) | set(clip.tolist())
        sequential = {i: f for i, f in enumerate(iter_frames(path, backend)) if i in wanted}  # never the whole video
        for extra in (None, info):
            for chosen in (indices, clip):
                expected = np.stack([sequential[i] for i in chosen])
                np.testing.assert_array_equal(read_frames(path, chosen, backend, info=extra), expected)


def test_frame_count_ignores_discarded_packets(videos_dir: Path, tmp_path: Path) -> None:
    """cotracker-pillow.mp4's header and packets say 149 frames; its edit list drops 2, so 147 decode."""
    path = shutil.copy(videos_dir / "cotracker-pillow.mp4", tmp_path / "pillow.mp4")
    for backend in [b for b in ("pyav", "opencv") if b == "opencv" or videos.import_av() is not None]:
        info = probe_video(path, backend)
        assert info.n_frames == sum(1 for _ in iter_frames(path, backend)) == 147
        with pytest.raises(InoError, match=r"pillow\.mp4: frame index 147 out of range"):
            read_frames(path, [147], backend, info=info)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(InoError, match=r"speech\.m4a: has no video stream"):
        probe_video(path, "pyav")
    with pytest.raises(InoError, match=r"speech\.m4a: not a readable video"):
        probe_video(path, "opencv")
