"""List files that give each video's frame count and rate (``path,n_frames,fps``): read, validated, and kept apart
from INO's plain lists, whose extra fields stay ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ino.cli import main
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


DIGITS = "n_frames must be a whole number >= 0 in plain digits, got"
RATE = "fps must be a positive number (such as 25, 29.97 or 30000/1001), got"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("b.mp4,12.5,30", f"{DIGITS} '12.5'"),
        ("b.mp4,-1,30", f"{DIGITS} '-1'"),
        ("b.mp4,1e3,30", f"{DIGITS} '1e3'"),  # a count in float notation is a slip, not 1000 frames
        ("b.mp4,6O,30", f"{DIGITS} '6O'"),
        ("b.mp4,nan,30", f"{DIGITS} 'nan'"),
        ("b.mp4,300,0", f"{RATE} '0'"),
        ("b.mp4,300,3O", f"{RATE} '3O'"),
        ("b.mp4,300,inf", f"{RATE} 'inf'"),
        ("b.mp4", "expected path,n_frames,fps as on the list's other lines, got 'b.mp4'"),
    ],
)
def test_a_bad_count_is_one_error_naming_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    _videos(tmp_path, "a.mp4", "b.mp4")
    listing = tmp_path / "k400.csv"
    listing.write_text(f"path,n_frames,fps\na.mp4,300,30\n{line}\n")
    with pytest.raises(InoError, match=re.escape(f"{listing} line 3: {message}")):
        list_videos(listing)


@pytest.mark.parametrize("count", ["6O", "nan", "inf", "1e3"])
def test_a_bad_count_on_the_first_line_is_an_error_not_a_header(tmp_path: Path, count: str) -> None:
    """Issue 21 case 3: the first line was taken for a header, and its video left out without a word."""
    _videos(tmp_path, "a.mp4", "b.mp4")
    listing = tmp_path / "k400.csv"
    listing.write_text(f"a.mp4,{count},30\nb.mp4,300,30\n")
    with pytest.raises(InoError, match=re.escape(f"{listing} line 1: {DIGITS} '{count}'")):
        list_videos(listing)


def test_a_byte_order_mark_is_not_part_of_the_first_path(tmp_path: Path) -> None:
    a, b = _videos(tmp_path, "a.mp4", "b.mp4")
    for name, text in [("counts.csv", "a.mp4,300,30\nb.mp4,250,25\n"), ("plain.txt", "a.mp4\nb.mp4\n")]:
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())  # as Excel saves "CSV UTF-8"
        videos = list_videos(tmp_path / name)
        assert videos == [a, b] and not videos.missing
    assert list_videos(tmp_path / "counts.csv").counts == {a: (300, 30.0), b: (250, 25.0)}
    headed = tmp_path / "headed.csv"
    headed.write_bytes("\ufeffpath,n_frames,fps\na.mp4,300,30\n".encode())
    assert list_videos(headed).counts == {a: (300, 30.0)}


def test_only_words_make_a_header_and_only_with_counts_below_it(tmp_path: Path) -> None:
    a, b = _videos(tmp_path, "a.mp4", "b.mp4")
    labels = tmp_path / "labels.csv"  # no counts: every line is a video, even one whose other fields are words
    labels.write_text("a.mp4,abseiling,train\nb.mp4,zumba,val\n")
    assert list_videos(labels) == [a, b] and list_videos(labels).counts == {}
    headed = tmp_path / "headed.csv"
    for header in ["video,num_frames,frame_rate,label", '"path","n_frames","fps"']:
        headed.write_text(f"{header}\na.mp4,300,30,abseiling\n")
        listed = list_videos(headed)
        assert listed.counts == {a: (300, 30.0)} and listed.listed_at == {a: (headed, 2)}


def test_a_list_that_is_not_utf8_is_one_error_naming_the_line(tmp_path: Path) -> None:
    _videos(tmp_path, "a.mp4")
    listing = tmp_path / "list.csv"
    listing.write_bytes("a.mp4\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InoError, match=re.escape(f"{listing} line 2: not UTF-8 text (byte 0xe9); save the list as")):
        list_videos(listing)
    listing.write_bytes(b"a.mp4\nb\0.mp4\n")
    with pytest.raises(InoError, match=re.escape(f"{listing} line 2: a NUL character")):
        list_videos(listing)


@pytest.mark.parametrize("command", ["train", "prepare"])
def test_train_and_prepare_name_a_list_that_is_not_utf8_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, command: str
) -> None:
    """Issue 21 case 8: a UnicodeDecodeError traceback in both commands."""
    _videos(tmp_path, "a.mp4")
    listing = tmp_path / "list.csv"
    listing.write_bytes(b"a.mp4\n\xff\xfeb.mp4\n")
    out = str(tmp_path / "out")
    argv = (
        ["--data", str(listing), "--output-dir", out] if command == "train" else ["--src", str(listing), "--dst", out]
    )
    assert main([command, *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"ino {command}: error: {listing} line 2: not UTF-8 text (byte 0xff); save the list as UTF-8"
    ]
    assert not (tmp_path / "out").exists()


def test_a_symlink_loop_lists_each_video_once(tmp_path: Path) -> None:
    """Issue 21 case 5: ``ln -s . V/again`` listed every video 41 times (until the limit on nested links)."""
    a, b = _videos(tmp_path, "V/a.mp4", "V/sub/b.mp4")
    (tmp_path / "V" / "again").symlink_to(".")
    assert list_videos(tmp_path / "V") == [a, b]
    (tmp_path / "V" / "sub" / "up").symlink_to("..")  # two loops: 2^40 paths for a walk that follows them
    (tmp_path / "V" / "also-a.mp4").symlink_to("a.mp4")  # one real file under two names
    assert list_videos(tmp_path / "V") == [a, b]
    assert list_videos(str(tmp_path / "V" / "**" / "*.mp4")) == [a, b]
    assert [p.resolve() for p in list_videos(str(tmp_path / "V" / "*"))] == [a, b]  # "again/sub/b.mp4" is b
    elsewhere = tmp_path / "elsewhere"
    _videos(elsewhere, "c.mp4")
    (tmp_path / "V" / "linked").symlink_to(elsewhere)  # a link to another folder is still followed
    assert list_videos(tmp_path / "V") == [a, tmp_path / "V" / "linked" / "c.mp4", b]
