"""``ino prepare``: outputs at the short side with exact frames, mirrored paths, resumable, bad inputs reported."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

import ino.data.transcode as prepare_module
from ino.cli import main
from ino.data.transcode import REPORT_NAME, TranscodeConfig, output_size, prepare
from ino.data.videos import iter_frames, probe_video
from support.video_factory import frame_index, write_video

av = pytest.importorskip("av")

SMALL = TranscodeConfig(short_side=32, keyframe_interval=4, crf=12)  # crf 12: frames keep their colour names
DIED = "the worker process died while transcoding it"


def test_output_size_scales_the_short_side_down_to_even_sides() -> None:
    assert output_size(854, 480, 320) == (570, 320)
    assert output_size(480, 854, 320) == (320, 570)
    assert output_size(1280, 720, 320) == (568, 320)
    assert output_size(300, 203, 320) == (300, 204)  # never upscaled, only made even
    assert output_size(128, 96, 32) == (42, 32)


def _keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.pts is not None]
    order = sorted(range(len(packets)), key=lambda i: packets[i].pts)
    return [rank for rank, i in enumerate(order) if packets[i].is_keyframe]


def test_prepare_transcodes_mirrors_paths_and_resumes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_video(src / "a.mp4", 20, fps=30, height=96, width=128)
    write_video(src / "sub" / "b.mkv", 9, fps=24, height=40, width=30)
    report = prepare(src, dst, SMALL, workers=2, progress=False)
    assert report.counts == {"done": 2, "skipped": 0, "failed": 0} and not caplog.records and report.frames == 29
    a, b = dst / "a.mp4", dst / "sub" / "b.mkv.mp4"
    info = probe_video(a)
    assert (info.n_frames, info.fps, info.width, info.height) == (20, 30.0, 42, 32)
    assert [frame_index(f) for f in iter_frames(a)] == list(range(20))
    assert _keyframes(a)[:3] == [0, 4, 8]
    assert (probe_video(b).width, probe_video(b).height, probe_video(b).n_frames) == (30, 40, 9)
    assert json.loads((dst / REPORT_NAME).read_text())["counts"]["done"] == 2

    stamp = os.stat(a).st_mtime_ns
    again = prepare(src, dst, SMALL, workers=1, progress=False)
    assert again.counts == {"done": 0, "skipped": 2, "failed": 0} and os.stat(a).st_mtime_ns == stamp
    other = prepare(src, dst, TranscodeConfig(short_side=16), workers=1, progress=False)  # new settings: redone
    assert other.counts["done"] == 2 and probe_video(a).height == 16
    assert sorted(p.name for p in dst.rglob("*") if p.is_file()) == ["a.mp4", "b.mkv.mp4", REPORT_NAME]


def test_prepare_resamples_to_a_frame_rate(tmp_path: Path) -> None:
    source = write_video(tmp_path / "v.mp4", 40, fps=30)
    prepare(source, tmp_path / "out", TranscodeConfig(short_side=48, fps=8, crf=12), workers=1, progress=False)
    output = tmp_path / "out" / "v.mp4"
    assert probe_video(output).fps == 8.0
    # INO's 8-fps timeline of the source, now frame by frame: floor(k * 30 / 8)
    assert [frame_index(f) for f in iter_frames(output)] == [0, 3, 7, 11, 15, 18, 22, 26, 30, 33]


def test_bad_inputs_are_reported_without_stopping(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "good.mp4", 6)
    (videos / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(3000))
    (videos / "frames").mkdir()
    (videos / "frames" / "00000.jpg").write_bytes(b"not a jpeg")
    listing = tmp_path / "list.csv"
    listing.write_text("videos/good.mp4\nvideos/bad.mp4\nvideos/gone.mp4\nvideos/frames\n")
    dst = tmp_path / "dst"
    assert main(["prepare", "--src", str(listing), "--dst", str(dst), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "transcoded 1, already done 0, failed 2, missing from the list 1" in out
    assert err.count("failed: ") == 2 and "bad.mp4" in err and "00000.jpg" in err and err.count("missing: ") == 1
    report = json.loads((dst / REPORT_NAME).read_text())
    assert report["counts"] == {"done": 1, "skipped": 0, "failed": 2} and len(report["missing"]) == 1
    assert sorted(Path(f["source"]).name for f in report["failed"]) == ["bad.mp4", "frames"]
    assert probe_video(dst / "good.mp4").n_frames == 6  # mirrored relative to the listed videos' folder
    assert not any(p.name.startswith(".") for p in dst.iterdir())  # no temporary file left behind


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the patch reaches workers only by fork")
def test_a_worker_that_dies_costs_only_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in "abcd":
        write_video(tmp_path / "src" / f"{name}.mp4", 4)
    real = prepare_module.transcode

    def crashing(source: Path, *args: object) -> int:
        if source.name == "b.mp4":
            os._exit(3)  # as a segfault inside FFmpeg would: the whole pool breaks
        return real(source, *args)

    monkeypatch.setattr(prepare_module, "transcode", crashing)
    report = prepare(tmp_path / "src", tmp_path / "dst", SMALL, workers=2, progress=False)
    # a file finished by a worker of the broken pool may be counted as already done on its retry
    assert report.counts["failed"] == 1 and report.counts["done"] + report.counts["skipped"] == 3
    assert report.failed == [{"source": str(tmp_path / "src" / "b.mp4"), "error": DIED}]
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["a.mp4", "c.mp4", "d.mp4", REPORT_NAME]
