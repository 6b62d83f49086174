"""Training clips: listing sources, INO's 8-fps clip index and its cache, the seeded sharded sampler, the dataset's
per-sample seeding and decode-failure fallback, and loader determinism across worker counts."""

from __future__ import annotations

import os
import random
import re
import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import ino.data.probes as probes
from ino.data.clips import ClipDataset, ClipIndex, ClipSampler, ClipWarning, list_videos, make_loader
from ino.data.probes import ProbeTable
from ino.data.videos import VideoInfo, resampled_indices
from ino.errors import InoError
from support.video_factory import frame_index, write_video

pytest.importorskip("av")

# ---------------------------------------------------------------------------------------------------- listing


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_list_videos_scans_folders_recursively_with_frame_folders_as_videos(tmp_path: Path) -> None:
    a = _touch(tmp_path / "a.mp4")
    b = _touch(tmp_path / "sub" / "b.WEBM")
    frames = tmp_path / "sub" / "frames"
    _touch(frames / "00000.jpg"), _touch(frames / "00001.jpg"), _touch(frames / ".DS_Store")
    mixed = _touch(tmp_path / "mixed" / "c.mkv")
    _touch(tmp_path / "mixed" / "cover.png")  # images beside a video: not a frame folder
    _touch(tmp_path / "notes.txt"), _touch(tmp_path / ".a.mp4.tmp123"), _touch(tmp_path / ".hidden.mp4")
    assert list_videos(tmp_path) == [a, mixed, b, frames]
    assert list_videos(frames) == [frames]
    assert list_videos(str(tmp_path / "**" / "*.mp4")) == [a]
    assert list_videos([a, str(tmp_path / "sub" / "*"), a]) == [a, b, frames]  # de-duplicated, in order
    with pytest.raises(InoError, match="nope"):
        list_videos(tmp_path / "nope")
    with pytest.raises(InoError, match="no videos found"):
        list_videos(str(tmp_path / "*.avi"))


def test_list_videos_reads_ino_csv_relative_to_the_list_and_warns_once_per_missing_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _touch(tmp_path / "data" / "Charades_v1_480" / "4U20P.mp4")
    b = _touch(tmp_path / "elsewhere" / "b.mp4")
    listing = _touch(tmp_path / "meta" / "train_list.csv")
    listing.write_text(
        f"../data/Charades_v1_480/4U20P.mp4\n"
        f"  ./../data/gone.mp4 , label, 3\n\n# a comment\n{b},x\n../data/also-gone.mp4\n"
    )
    with pytest.warns(ClipWarning) as caught:
        videos = list_videos(listing)
    assert videos == [a, b]
    assert [Path(p).name for p in videos.missing] == ["gone.mp4", "also-gone.mp4"]
    messages = [str(w.message) for w in caught]
    assert sum("gone.mp4: listed in" in m for m in messages) == 2 and "2 listed videos are missing" in messages[-1]
    (tmp_path / "meta" / "list.txt").write_text("../elsewhere/b.mp4\n./data/Charades_v1_480/4U20P.mp4\n")
    monkeypatch.chdir(tmp_path)  # INO's lines are relative to where training runs: the fallback
    assert list_videos(tmp_path / "meta" / "list.txt") == [b, Path("data/Charades_v1_480/4U20P.mp4")]


# ------------------------------------------------------------------------------------------------------ index


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two usable videos (30 and 24 fps), a 2-frame one and a corrupt one."""
    root = tmp_path_factory.mktemp("collection")
    write_video(root / "v30.mp4", 40, fps=30)
    write_video(root / "w" / "v24.mp4", 30, fps=24)  # lists after v30.mp4
    write_video(root / "short.mp4", 2, fps=30)
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(2000))
    return root


def _build(root: Path, **kwargs: object) -> ClipIndex:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClipWarning)
        return ClipIndex.build(list_videos(root), workers=2, **kwargs)


def test_index_follows_ino_8fps_resampling_and_skips_bad_videos_with_a_warning(collection: Path) -> None:
    with pytest.warns(ClipWarning) as caught:
        index = ClipIndex.build(list_videos(collection), workers=2)
    assert [p.name for p in index.videos] == ["v30.mp4", "v24.mp4"]
    assert sorted(p.name for p in index.skipped) == ["corrupt.mp4", "short.mp4"]
    assert "too short for one clip (2 frames at 30 fps)" in index.skipped[collection / "short.mp4"]
    assert sorted(str(w.message).split(":")[0] for w in caught) == [
        str(collection / "corrupt.mp4"),
        str(collection / "short.mp4"),
    ]
    # 30 fps, 40 frames: floor(40 * 8 / 30) = 10 resampled frames, 7 windows of 4; 24 fps: a plain stride of 3
    assert index.clips_of(0)[0].tolist() == [0, 3, 7, 11] and index.clips_of(1)[0].tolist() == [0, 3, 6, 9]
    assert index.clip_counts.tolist() == [7, 7] and index.n_clips == 14
    assert index.clips_of(0)[-1].tolist() == resampled_indices(40, 30)[6:10].tolist()
    assert index.clip_frames(7).tolist() == [0, 3, 6, 9] and index.locate(13) == (1, 6)
    with pytest.raises(IndexError):
        index.locate(14)

    stride = _build(collection, sampling="stride", frame_stride=8)
    assert stride.clip_counts.tolist() == [40 - 24, 30 - 24] and stride.clips_of(0)[1].tolist() == [1, 9, 17, 25]
    six = _build(collection, clip_len=6)
    assert six.clip_counts.tolist() == [5, 5]
    with pytest.raises(InoError, match="sampling"):
        _build(collection, sampling="random")


def test_index_cache_is_used_and_invalidated_by_a_changed_file(collection: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "videos"
    shutil.copytree(collection, root)
    cache = tmp_path / "cache"
    first = _build(root, cache_dir=cache)
    assert not first.from_cache and len(list(cache.glob("probes-*.npz"))) == 1

    calls: list[str] = []
    real_probe = probes.probe_video

    def counting(path: str, backend: str) -> VideoInfo:
        calls.append(Path(path).name)
        return real_probe(path, backend)

    def summary(index: ClipIndex) -> list[VideoInfo]:
        return [index.info(v) for v in range(len(index.videos))]

    monkeypatch.setattr(probes, "probe_video", counting)
    second = _build(root, cache_dir=cache)
    assert second.from_cache and not calls
    assert summary(second) == summary(first) and second.skipped == first.skipped and first.info(0).pts

    stat = os.stat(root / "v30.mp4")
    os.utime(root / "v30.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert not _build(root, cache_dir=cache).from_cache and len(calls) == 4
    write_video(root / "w" / "v24.mp4", 36, fps=24)  # new size
    changed = _build(root, cache_dir=cache)
    assert not changed.from_cache and changed.info(1).n_frames == 36 and changed.clip_counts.tolist() == [7, 9]
    assert _build(root, cache_dir=cache).from_cache and len(calls) == 8
    assert _build(root, cache_dir=cache, clip_len=2).clip_counts.tolist() == [9, 11]  # clips are not cached
    assert len(calls) == 8


def test_index_of_the_real_clips(videos_dir: Path, tmp_path: Path) -> None:
    index = _build(videos_dir, cache_dir=tmp_path)
    assert len(index.videos) == 33 and not index.skipped
    for v in range(len(index.videos)):
        info = index.info(v)
        timeline = resampled_indices(info.n_frames, info.fps, 8)
        expected = np.lib.stride_tricks.sliding_window_view(timeline, 4)
        assert np.array_equal(index.clips_of(v), expected), info.path
    ta4 = index.videos.index(videos_dir / "ta-sample4.mp4")  # 29.97 fps
    assert index.clips_of(ta4)[0].tolist() == [0, 3, 7, 11]
    assert _build(videos_dir, cache_dir=tmp_path).from_cache
    sampler = ClipSampler(index, 5, batch_size=4)
    assert len(sampler.draw(0)) == 33 * 5 and sampler.samples_per_epoch == 164 and sampler.steps_per_epoch == 41


def _counts_list(index: ClipIndex, path: Path, lie: dict[str, int] | None = None) -> Path:
    """A ``path,n_frames,fps`` list of the index's usable and too-short videos, with its probes' numbers (or a
    lie about some counts, by file name)."""
    rows = [index.info(v) for v in range(len(index.videos))]
    lines = [f"{i.path},{(lie or {}).get(i.path.name, i.n_frames)},{i.fps!r}" for i in rows]
    short = [p for p, reason in index.skipped.items() if "too short" in reason]
    path.write_text("path,n_frames,fps\n" + "".join(f"{line}\n" for line in lines) + f"{short[0]},2,30\n")
    return path


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_listed_frame_counts_give_the_probed_index_and_pixels_without_a_probe(
    collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    probed = _build(collection, backend=backend)
    listing = _counts_list(probed, tmp_path / "list.csv")
    calls: list[str] = []
    real_probe = probes.probe_video
    monkeypatch.setattr(probes, "probe_video", lambda path, kind: calls.append(path) or real_probe(path, kind))
    listed = _build(listing, backend=backend, cache_dir=tmp_path / "cache")
    assert not calls and not listed.from_cache and not (tmp_path / "cache").exists()
    assert listed.identity() == probed.identity() and list(listed.skipped) == [collection / "short.mp4"]
    assert listed.clip_counts.tolist() == probed.clip_counts.tolist()
    assert all(listed.info(v).pts is None and listed.info(v).backend == backend for v in range(2))
    for clip in range(probed.n_clips):
        expected = ClipDataset(probed, lambda f: f).decode(clip)
        assert np.array_equal(ClipDataset(listed, lambda f: f).decode(clip), expected), clip

    v30 = str(collection / "v30.mp4")
    mixed = ClipIndex.build([v30, collection / "w" / "v24.mp4"], counts={v30: (40, 30.0)}, backend=backend)
    assert calls == [str(collection / "w" / "v24.mp4")] and mixed.identity() == probed.identity()


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_a_wrong_listed_count_costs_a_replaced_clip_with_a_warning(
    collection: Path, tmp_path: Path, backend: str
) -> None:
    probed = _build(collection, backend=backend)
    listing = _counts_list(probed, tmp_path / "list.csv", lie={"v30.mp4": 80})
    listed = _build(listing, backend=backend)
    assert listed.clip_counts.tolist() == [18, 7]  # floor(80 * 8 / 30) = 21 resampled frames: 18 windows of 4
    dataset = ClipDataset(listed, lambda frames: [frame_index(f) for f in frames], seed=1)
    assert dataset[(0, 0, 6)] == [frame_index(f) for f in ClipDataset(probed, lambda f: f).decode(6)]
    v30 = collection / "v30.mp4"
    with pytest.warns(
        ClipWarning, match=re.escape(f"{listing} line 2: {v30} has 40 frames, not the 80 listed")
    ) as caught:
        replaced = dataset[(0, 0, 8)]  # frames 30, 33, 37, 41 of a 40-frame video
    # the clip at the same place within the real 7 clips: 8 * 7 // 18 = 3, frames floor(k * 30 / 8) for k = 3..6
    assert len(caught) == 1 and replaced == [11, 15, 18, 22] and dataset.decode_failures[str(v30)] == 0


def test_a_listed_count_far_too_high_does_not_stop_the_run(collection: Path, tmp_path: Path) -> None:
    """Issue 21 case 11: 100000 frames listed for a 40-frame video; a whole epoch ended with "11 clips in a row
    failed to decode" (replacements were drawn over all clips, nearly all of them that video's)."""
    probed = _build(collection)
    listing = _counts_list(probed, tmp_path / "list.csv", lie={"v30.mp4": 100_000})
    listed = _build(listing)
    assert [listed.listed_at(v) for v in range(2)] == [f"{listing} line 2", f"{listing} line 3"]
    assert probed.listed_at(0) is None
    sampler = ClipSampler(listed, 5, seed=3)
    items = list(sampler)
    dataset = ClipDataset(listed, lambda frames: [frame_index(f) for f in frames], seed=3)
    with pytest.warns(
        ClipWarning, match=re.escape(f"{listing} line 2: {collection / 'v30.mp4'} has 40 frames, not the 100000")
    ) as caught:
        first = [dataset[item] for item in items]
    assert len(caught) == 1  # one warning, naming the list line; no clip failed
    real = {tuple(int(i) for i in clip) for v in range(2) for clip in probed.clips_of(v)}
    v30_clips = {tuple(int(i) for i in clip) for clip in probed.clips_of(0)}
    assert all(tuple(clip) in real for clip in first) and sum(tuple(c) in v30_clips for c in first) == 5
    # the same clips whether a process knew the real count already (a warm loader worker) or finds it out
    assert [dataset[item] for item in items] == first
    with pytest.warns(ClipWarning, match="has 40 frames"):
        assert [ClipDataset(listed, dataset.transform, seed=3)[item] for item in items[::-1]] == first[::-1]


def test_probe_table_stores_even_timestamps_as_a_step_and_keeps_the_others() -> None:
    infos = [
        VideoInfo(Path("even.mp4"), 4, 30.0, 8, 8, "pyav", pts=(1024, 1536, 2048, 2560)),
        VideoInfo(Path("uneven.mp4"), 4, 30.0, 8, 8, "pyav", pts=(0, 512, 1536, 2048)),
        VideoInfo(Path("one.mp4"), 1, 30.0, 8, 8, "pyav", pts=(7,)),
        VideoInfo(Path("none.mp4"), 3, 30.0, 8, 8, "pyav"),
        VideoInfo(Path("cv.mp4"), 2, 25.0, 8, 8, "opencv", timestamps=(0.0, 0.04)),
    ]
    table = ProbeTable.from_infos(infos)
    assert len(table.pts) == 4 and table.pts_step.tolist() == [512, 0, 1, 0, 0]  # only the uneven run is stored
    joined = ProbeTable.concat([table, ProbeTable.from_infos(infos[1:]), ProbeTable.from_infos([])])
    assert [joined.info(row) for row in range(len(joined))] == infos + infos[1:]


# ---------------------------------------------------------------------------------------------------- sampler


def _fake_index(clip_counts: list[int]) -> ClipIndex:
    """An index without files: 24-fps videos with the given clip counts (clip_len 4, 8 fps: stride 3)."""
    infos = [VideoInfo(Path(f"v{i}.mp4"), 3 * (n + 3), 24.0, 8, 8, "pyav") for i, n in enumerate(clip_counts)]
    index = ClipIndex(ProbeTable.from_infos(infos))
    assert index.clip_counts.tolist() == clip_counts
    return index


COUNTS = [1, 3, 5, 6, 9, 12, 40, 2, 7, 5, 100, 4]


def test_sampler_draws_distinct_clips_per_video_each_epoch() -> None:
    index = _fake_index(COUNTS)
    sampler = ClipSampler(index, 5, seed=3, batch_size=1, drop_last=False)
    for epoch in range(4):
        drawn = sampler.draw(epoch)
        assert len(set(drawn.tolist())) == len(drawn) == sum(min(5, n) for n in COUNTS)
        per_video = Counter(index.locate(int(c))[0] for c in drawn)
        assert [per_video[v] for v in range(len(COUNTS))] == [min(5, n) for n in COUNTS]
        sampler.set_epoch(epoch)
        assert [c for _, _, c in sampler] == drawn.tolist()
    assert not np.array_equal(sampler.draw(0), sampler.draw(1))
    assert np.array_equal(sampler.draw(2), ClipSampler(index, 5, seed=3).draw(2))
    assert not np.array_equal(sampler.draw(2), ClipSampler(index, 5, seed=4).draw(2))


def test_sampler_subsets_are_uniform() -> None:
    """Floyd's algorithm: each of a video's 10 clips is drawn with probability 5/10, pairs with (5*4)/(10*9)."""
    sampler = ClipSampler(_fake_index([10]), 5)
    draws = np.array([np.sort(sampler.draw(e)) for e in range(2000)])
    singles = np.bincount(draws.ravel(), minlength=10) / 2000
    assert np.abs(singles - 0.5).max() < 0.05
    assert abs(np.mean([(0 in d) and (9 in d) for d in draws.tolist()]) - 20 / 90) < 0.04


@pytest.mark.parametrize("batch_size", [1, 4])
def test_sampler_shards_the_epoch_over_ranks_without_overlap(batch_size: int) -> None:
    index = _fake_index(COUNTS)
    total = sum(min(5, n) for n in COUNTS)  # 50
    ranks = [ClipSampler(index, 5, seed=1, rank=r, world_size=2, batch_size=batch_size) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(5)
    items = [list(s) for s in ranks]
    kept = total // (2 * batch_size) * 2 * batch_size
    assert len(items[0]) == len(items[1]) == len(ranks[0]) == kept // 2
    assert ranks[0].steps_per_epoch == kept // 2 // batch_size
    assert all(epoch == 5 for it in items for epoch, _, _ in it)
    positions = sorted(p for it in items for _, p, _ in it)
    assert positions == list(range(kept))
    clips = [c for it in items for _, _, c in it]
    assert len(set(clips)) == kept and set(clips) <= set(ranks[0].draw(5).tolist())
    merged = sorted((p, c) for it in items for _, p, c in it)
    assert [c for _, c in merged] == ranks[0].draw(5)[:kept].tolist()


def test_sampler_without_drop_last_pads_to_equal_ranks() -> None:
    index = _fake_index([5, 5, 1])  # 11 clips over 3 ranks: 12 slots, one repeat
    samplers = [ClipSampler(index, 5, rank=r, world_size=3, batch_size=2, drop_last=False) for r in range(3)]
    items = [[c for _, _, c in s] for s in samplers]
    assert [len(i) for i in items] == [4, 4, 4] and samplers[0].steps_per_epoch == 2
    assert sorted({c for clips in items for c in clips}) == list(range(11))


def test_sampler_skip_resumes_exactly() -> None:
    sampler = ClipSampler(_fake_index(COUNTS), 5, seed=2, rank=1, world_size=2, batch_size=4)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.skip(8)
    assert list(sampler) == full[8:] and len(sampler) == len(full) - 8
    assert list(sampler) == full[8:]  # the skip holds for the epoch, until set_epoch
    sampler.set_epoch(3)
    assert list(sampler) == full
    with pytest.raises(InoError, match="skip"):
        sampler.skip(len(full) + 1)


# ---------------------------------------------------------------------------------------------------- dataset


def _noisy(frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """A transform whose output depends on every RNG an augmentation might use."""
    return torch.from_numpy(frames).float().mean((1, 2, 3)), torch.rand(3), float(np.random.rand()), random.random()


def test_dataset_seeds_each_sample_from_its_epoch_and_position(collection: Path) -> None:
    dataset = ClipDataset(_build(collection), _noisy, seed=7)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = dataset[(2, 5, 3)], dataset[(2, 5, 3)]
    assert torch.equal(a[1], b[1]) and a[2:] == b[2:] and torch.equal(a[0], b[0])
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG stream is untouched
    assert not torch.equal(dataset[(2, 6, 3)][1], a[1]) and not torch.equal(dataset[(3, 5, 3)][1], a[1])
    assert not torch.equal(ClipDataset(dataset.index, _noisy, seed=8)[(2, 5, 3)][1], a[1])
    assert torch.equal(dataset[(2, 6, 3)][0], a[0])  # the clip itself depends only on its id


def test_dataset_decodes_the_indexed_frames(collection: Path) -> None:
    dataset = ClipDataset(_build(collection), lambda frames: frames)
    frames = dataset[(0, 0, 2)]
    assert frames.shape == (4, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_index(f) for f in frames] == [7, 11, 15, 18]  # 30 fps: floor(k * 30 / 8) for k = 2..5
    assert [frame_index(f) for f in dataset.decode(13)] == [18, 21, 24, 27]


def test_decode_failure_falls_back_to_another_clip_with_one_warning(collection: Path, tmp_path: Path) -> None:
    root = tmp_path / "videos"
    shutil.copytree(collection, root)
    index = _build(root)
    dataset = ClipDataset(index, lambda frames: [frame_index(f) for f in frames], seed=1)
    good = dataset[(0, 0, 9)]
    with open(root / "v30.mp4", "r+b") as file:  # corrupt it after indexing: decoding must now fail
        file.truncate(600)
    with pytest.warns(ClipWarning, match="v30.mp4") as caught:
        fallback = dataset[(0, 0, 2)]
        second = dataset[(0, 1, 3)]
    assert len(caught) == 1  # once per video
    assert fallback == dataset[(0, 0, 2)] and sum(dataset.decode_failures.values()) >= 3
    assert len(fallback) == 4 and len(second) == 4 and dataset[(0, 0, 9)] == good
    assert list(dataset.decode_failures) == [str(index.videos[0])]

    (root / "w" / "v24.mp4").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClipWarning)
        with pytest.raises(InoError, match="4 clips in a row failed"):
            ClipDataset(index, lambda frames: frames, max_retries=3)[(0, 0, 0)]


def test_loader_gives_the_same_batches_with_and_without_workers(collection: Path) -> None:
    index = _build(collection)
    dataset = ClipDataset(index, lambda frames: (torch.from_numpy(frames[:, :2, :2]), torch.rand(2)), seed=5)

    def epoch_batches(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        sampler = ClipSampler(index, 5, seed=5, batch_size=3)
        sampler.set_epoch(1)
        sampler.skip(3)
        return list(make_loader(dataset, sampler, 3, workers))

    serial, parallel = epoch_batches(0), epoch_batches(2)
    assert len(serial) == 2 and serial[0][0].shape == (3, 4, 2, 2, 3) and serial[0][1].shape == (3, 2)
    for (frames_a, noise_a), (frames_b, noise_b) in zip(serial, parallel, strict=True):
        assert torch.equal(frames_a, frames_b) and torch.equal(noise_a, noise_b)
    with pytest.raises(InoError, match="batch size"):
        make_loader(dataset, ClipSampler(index, 5, batch_size=3), 4, 0)
