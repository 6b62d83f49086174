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
from ino.utils.outputs import MARK_NAME, RECORD_NAME
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
    files = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert files == [MARK_NAME, "a.mp4", REPORT_NAME, f"sub/{MARK_NAME}", "sub/b.mkv.mp4"]  # both folders are ino's


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
    assert [p.name for p in dst.iterdir() if p.name.startswith(".")] == [MARK_NAME]  # no temporary file left


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
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == [MARK_NAME, "a.mp4", "c.mp4", "d.mp4", REPORT_NAME]


def _prepare(src: Path, dst: Path, *extra: str) -> int:
    return main(
        ["prepare", "--src", str(src), "--dst", str(dst), "--short-side", "32", "--workers", "1", "--quiet", *extra]
    )


def test_a_file_ino_did_not_write_is_replaced_only_with_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Issue 21 case 2: ``ino prepare`` replaced a user's file of the same name in ``--dst``."""
    write_video(tmp_path / "src" / "a.mp4", 4)
    write_video(tmp_path / "src" / "b.mp4", 4)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "b.mp4").write_bytes(b"the user's own video")
    assert _prepare(tmp_path / "src", dst) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{dst / 'b.mp4'} exists in --dst {dst} and was not written by ino" in err[0]
    assert "--overwrite" in err[0]
    assert (
        sorted(p.name for p in dst.iterdir()) == ["b.mp4"] and (dst / "b.mp4").read_bytes() == b"the user's own video"
    )

    (dst / REPORT_NAME).write_text("my notes\n")
    (dst / "b.mp4").rename(tmp_path / "b.mp4")
    assert _prepare(tmp_path / "src", dst) == 2  # the report's name is taken too
    assert f"--dst report {dst / REPORT_NAME} exists and was not written by ino" in capsys.readouterr().err
    assert _prepare(tmp_path / "src", dst, "--overwrite") == 0
    assert (
        probe_video(dst / "b.mp4").height == 32 and json.loads((dst / REPORT_NAME).read_text())["counts"]["done"] == 2
    )
    assert _prepare(tmp_path / "src", dst) == 0  # ino's outputs and report now: a rerun may replace them
    assert "already done 2" in capsys.readouterr().out
    assert json.loads((dst / RECORD_NAME).read_text()).keys() == {REPORT_NAME}  # an output is ino's by its tag


def test_outputs_of_an_older_ino_without_markers_are_still_ino_s(tmp_path: Path) -> None:
    write_video(tmp_path / "src" / "sub" / "a.mp4", 4)
    dst = tmp_path / "dst"
    prepare(tmp_path / "src", dst, SMALL, workers=1, progress=False)
    for marker in [dst / MARK_NAME, dst / "sub" / MARK_NAME, dst / RECORD_NAME]:
        marker.unlink(missing_ok=True)
    again = prepare(tmp_path / "src", dst, TranscodeConfig(short_side=16), workers=1, progress=False)
    assert again.counts["done"] == 1 and probe_video(dst / "sub" / "a.mp4").height == 16


def test_a_symlink_loop_transcodes_each_video_once(tmp_path: Path) -> None:
    """Issue 21 case 5: with ``ln -s . V/again``, each video was transcoded 41 times."""
    write_video(tmp_path / "V" / "a.mp4", 4)
    (tmp_path / "V" / "again").symlink_to(".")
    report = prepare(tmp_path / "V", tmp_path / "dst", SMALL, workers=1, progress=False)
    assert report.counts == {"done": 1, "skipped": 0, "failed": 0}
    assert sorted(str(p.relative_to(tmp_path / "dst")) for p in (tmp_path / "dst").rglob("*.mp4")) == ["a.mp4"]


def test_dst_inside_src_or_holding_an_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 21 case 6: ``--dst`` inside ``--src`` exited 0 and left out the videos under ``--dst``."""
    src = tmp_path / "videos"
    write_video(src / "a.mp4", 4)
    write_video(src / "out" / "b.mp4", 4)
    assert _prepare(src, src / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--dst {src / 'out'} lies inside --src {src}" in err[0]
    assert _prepare(src, src) == 2
    assert "lies inside --src" in capsys.readouterr().err
    listing = tmp_path / "list.csv"
    listing.write_text("videos/a.mp4\nvideos/out/b.mp4\n")
    assert _prepare(listing, src / "out") == 2  # a listed video under --dst: left out before, or overwritten
    assert f"{src / 'out' / 'b.mp4'}, named by --src {listing}, lies inside --dst" in capsys.readouterr().err
    assert sorted(p.name for p in (src / "out").iterdir()) == ["b.mp4"]  # nothing written
