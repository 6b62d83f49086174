"""List files that give each video's frame count and rate (``path,n_frames,fps``): read, validated, and kept apart
from INO's plain lists, whose extra fields stay ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ino.data.sources import ClipWarning, list_videos
from ino.errors import InoError


def _videos(root: Path, *names: str) -> list[Path]:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return [root / name for name in names]


def test_a_list_with_frame_counts_gives_them_after_its_header(tmp_path: Path) -> None:
    a, b, c = _videos(tmp_path, "a.mp4", "sub/b.mp4", "c.mp4")
    listing = tmp_path / "k400.csv"
    listing.write_text(
        "path,n_frames,fps\n# a comment\na.mp4,300,30\n sub/b.mp4 , 48 , 30000/1001 ,label\ngone.mp4,10,25\n"
        f"{c},0,29.97\n"
    )
    with pytest.warns(ClipWarning) as caught:
        videos = list_videos(listing)
    messages = [str(w.message).split(": ")[-1] for w in caught]
    assert messages == [f"listed in {listing} but missing; skipped", "1 listed videos are missing"]
    assert videos == [a, b, c] and [p.name for p in videos.missing] == ["gone.mp4"]
    assert videos.counts == {a: (300, 30.0), b: (48, 30000 / 1001), c: (0, 29.97)}
    headless = tmp_path / "headless.csv"
    headless.write_text("a.mp4,300,30\n")
    assert list_videos([headless, tmp_path / "sub"]).counts == {a: (300, 30.0)}  # b: found by the scan, no counts


def test_a_plain_list_keeps_ignoring_its_extra_fields(tmp_path: Path) -> None:
    a, b = _videos(tmp_path, "a.mp4", "b.mp4")
    listing = tmp_path / "train.csv"
    listing.write_text("a.mp4,label,3\nb.mp4,7\n")
    videos = list_videos(listing)
    assert videos == [a, b] and videos.counts == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("b.mp4,12.5,30", "n_frames must be a whole number >= 0, got '12.5'"),
        ("b.mp4,-1,30", "n_frames must be a whole number >= 0, got '-1'"),
        ("b.mp4,300,0", "fps must be a positive number, got '0'"),
        ("b.mp4,300,3O", "expected path,n_frames,fps as on the list's other lines, got 'b.mp4,300,3O'"),
        ("b.mp4", "expected path,n_frames,fps as on the list's other lines, got 'b.mp4'"),
    ],
)
def test_a_bad_count_is_one_error_naming_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    _videos(tmp_path, "a.mp4", "b.mp4")
    listing = tmp_path / "k400.csv"
    listing.write_text(f"path,n_frames,fps\na.mp4,300,30\n{line}\n")
    with pytest.raises(InoError, match=re.escape(f"{listing} line 3: {message}")):
        list_videos(listing)
